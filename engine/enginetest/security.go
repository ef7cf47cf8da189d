package enginetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"

	"github.com/billing-engine/billing/engine/internal/embedded"
)

// BrokerOption configures StartBrokerWith.
type BrokerOption func(*brokerConfig)

type brokerConfig struct {
	embedded []embedded.Option
	sasl     *SASL
	ca       *CA
	mutual   bool
}

// SASL is a SASL user: Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
type SASL struct {
	Mechanism, User, Password string
}

// WithSASLUser turns SASL on in the broker and adds a user that may do
// everything. The first user given is the one Broker.ClientConfig
// authenticates as. Default: no SASL.
func WithSASLUser(mechanism, user, password string) BrokerOption {
	return func(c *brokerConfig) {
		c.embedded = append(c.embedded, embedded.SASLUser(mechanism, user, password))
		if c.sasl == nil {
			c.sasl = &SASL{Mechanism: mechanism, User: user, Password: password}
		}
	}
}

// WithTLS makes the broker accept TLS connections only, with a certificate
// for 127.0.0.1 and localhost signed by ca. Default: plaintext.
func WithTLS(ca *CA) BrokerOption { return func(c *brokerConfig) { c.ca = ca } }

// WithClientCerts makes a TLS broker (see WithTLS) require a client
// certificate signed by its CA. Default: none asked for.
func WithClientCerts() BrokerOption { return func(c *brokerConfig) { c.mutual = true } }

// StartBrokerWith starts the embedded broker, set up by opts, on a free
// loopback port with its log under a temporary directory, and stops it when
// the test ends. Broker.ClientConfig returns a client configuration that
// gets through its SASL and TLS.
func StartBrokerWith(t testing.TB, opts ...BrokerOption) *Broker {
	t.Helper()
	var c brokerConfig
	for _, o := range opts {
		o(&c)
	}
	eopts := append([]embedded.Option{embedded.Partitions(8)}, c.embedded...)
	var clientTLS *tls.Config
	if c.ca != nil {
		server := c.ca.ServerTLS(t)
		clientTLS = &tls.Config{RootCAs: c.ca.Pool(), MinVersion: tls.VersionTLS12}
		if c.mutual {
			server.ClientAuth = tls.RequireAndVerifyClientCert
			server.ClientCAs = c.ca.Pool()
			clientTLS.Certificates = []tls.Certificate{c.ca.issue(t, "client", x509.ExtKeyUsageClientAuth)}
		}
		eopts = append(eopts, embedded.TLS(server))
	}
	dataDir := t.TempDir()
	b, err := embedded.Start(FreeAddr(t), dataDir, eopts...)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	br := &Broker{b: b, addr: b.Addr(), dataDir: dataDir, sasl: c.sasl, tls: clientTLS}
	t.Cleanup(br.Close)
	return br
}

// ClientConfig returns Config with what it takes to get through the
// broker's SASL (as the first user given) and TLS (trusting its CA, with a
// client certificate when the broker asks for one).
func (b *Broker) ClientConfig() *sarama.Config {
	c := Config()
	if b.sasl != nil {
		SetSASL(c, *b.sasl)
	}
	if b.tls != nil {
		c.Net.TLS.Enable = true
		c.Net.TLS.Config = b.tls.Clone()
	}
	return c
}

// SetSASL makes c authenticate as s.
func SetSASL(c *sarama.Config, s SASL) {
	c.Net.SASL.Enable = true
	c.Net.SASL.Handshake = true
	c.Net.SASL.Mechanism = sarama.SASLMechanism(s.Mechanism)
	c.Net.SASL.User = s.User
	c.Net.SASL.Password = s.Password
	switch s.Mechanism {
	case sarama.SASLTypeSCRAMSHA256:
		c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{gen: sha256.New} }
	case sarama.SASLTypeSCRAMSHA512:
		c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{gen: sha512.New} }
	}
}

// scramClient is sarama's SCRAM client on xdg-go/scram.
type scramClient struct {
	gen  scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (c *scramClient) Begin(user, password, authzID string) error {
	cl, err := c.gen.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	c.conv = cl.NewConversation()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }

func (c *scramClient) Done() bool { return c.conv.Done() }

// CA is a throwaway certificate authority for one test.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// CertFile is the CA certificate as a PEM file, for kafka.tls.ca_file.
	CertFile string
}

// NewCA creates a certificate authority valid for a day and writes its
// certificate to a file under the test's temporary directory.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "enginetest CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse CA certificate: %v", err)
	}
	ca := &CA{cert: cert, key: key, CertFile: filepath.Join(t.TempDir(), "ca.pem")}
	writePEM(t, ca.CertFile, "CERTIFICATE", der)
	return ca
}

// Pool returns a pool holding the CA certificate alone.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// ServerTLS returns a server TLS configuration with a certificate for
// 127.0.0.1, ::1 and localhost signed by the CA.
func (ca *CA) ServerTLS(t testing.TB) *tls.Config {
	t.Helper()
	return &tls.Config{
		Certificates: []tls.Certificate{ca.issue(t, "localhost", x509.ExtKeyUsageServerAuth)},
		MinVersion:   tls.VersionTLS12,
	}
}

// ClientCertFiles issues a client certificate signed by the CA and writes
// it and its key as PEM files, for kafka.tls.cert_file and key_file.
func (ca *CA) ClientCertFiles(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	c := ca.issue(t, "client", x509.ExtKeyUsageClientAuth)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	writePEM(t, certFile, "CERTIFICATE", c.Certificate[0])
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatalf("marshal client key: %v", err)
	}
	writePEM(t, keyFile, "PRIVATE KEY", der)
	return certFile, keyFile
}

// issue signs a leaf certificate for name, 127.0.0.1, ::1 and localhost.
func (ca *CA) issue(t testing.TB, name string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("issue %s certificate: %v", name, err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("serial number: %v", err)
	}
	return n
}

func writePEM(t testing.TB, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}
