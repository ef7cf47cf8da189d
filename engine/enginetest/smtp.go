package enginetest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPMessage is one message an SMTPServer accepted.
type SMTPMessage struct {
	// From is the envelope sender (MAIL FROM) and To the envelope
	// recipients (RCPT TO), in order.
	From string
	To   []string
	// Data is the message as received, headers and body, with CRLF line
	// endings.
	Data []byte
	// Header is Data's header, parsed; nil when Data does not parse as a
	// message.
	Header mail.Header
	// MessageID is the Message-ID header's value, angle brackets
	// included.
	MessageID string
	// TLS tells whether the session had switched to TLS (STARTTLS) when
	// the message arrived, and User whom it authenticated as ("" for no
	// AUTH).
	TLS  bool
	User string
}

// SMTPOption configures StartSMTP.
type SMTPOption func(*smtpConfig)

type smtpConfig struct {
	tls       *tls.Config
	user, pwd string
	reject    map[string]bool
	countOnly bool
}

// WithCountOnly makes the server read each message to its end and count
// it, keeping only its envelope: a sink for benchmarks,
// where parsing and keeping every message would load the machine under
// test.
func WithCountOnly() SMTPOption {
	return func(c *smtpConfig) { c.countOnly = true }
}

// WithSTARTTLS offers STARTTLS with a self-signed certificate for
// 127.0.0.1, ::1 and localhost, made when the server starts. Clients must
// trust it (CAFile) or skip verification. Default: no TLS.
func WithSTARTTLS() SMTPOption {
	return func(c *smtpConfig) { c.tls = &tls.Config{} }
}

// WithAuth offers AUTH PLAIN and refuses MAIL FROM (530) until a client
// has authenticated as user with password. Without WithSTARTTLS, AUTH is
// offered on the plain connection; with it, only after STARTTLS. Default:
// no AUTH, every client may send.
func WithAuth(user, password string) SMTPOption {
	return func(c *smtpConfig) { c.user, c.pwd = user, password }
}

// WithRejectRecipients makes the server refuse each of addrs at RCPT TO
// with a permanent error: "550 5.1.1 <addr>: mailbox unavailable".
// Default: every recipient is accepted.
func WithRejectRecipients(addrs ...string) SMTPOption {
	return func(c *smtpConfig) {
		if c.reject == nil {
			c.reject = map[string]bool{}
		}
		for _, a := range addrs {
			c.reject[strings.ToLower(a)] = true
		}
	}
}

// SMTPServer is a real SMTP server (github.com/emersion/go-smtp) on a
// loopback port that keeps what it accepts in memory, for tests of
// senders. It can be stopped and started again on the same address. Its
// methods are safe for concurrent use.
type SMTPServer struct {
	t   testing.TB
	cfg smtpConfig

	// lifecycle serialises Start and Stop.
	lifecycle sync.Mutex
	addr      string
	srv       *smtp.Server
	ln        *trackingListener
	served    chan struct{}

	certDER []byte // the STARTTLS certificate, when offered

	// mu guards the fields below. It is never held while taking
	// lifecycle.
	mu        sync.Mutex
	ended     *sync.Cond // signalled when a session ends
	sessions  int        // sessions not yet ended
	msgs      []SMTPMessage
	stopAfter int // messages still accepted before stopping; -1: no limit
	stopping  bool
	finished  bool // the test has ended: log no more
}

// StartSMTP starts an SMTP server on 127.0.0.1 at a free port and stops it
// when the test ends.
func StartSMTP(t testing.TB, opts ...SMTPOption) *SMTPServer {
	t.Helper()
	s := &SMTPServer{t: t, addr: "127.0.0.1:0", stopAfter: -1}
	s.ended = sync.NewCond(&s.mu)
	for _, o := range opts {
		o(&s.cfg)
	}
	if s.cfg.tls != nil {
		cert, err := selfSignedCert()
		if err != nil {
			t.Fatalf("smtp server: certificate: %v", err)
		}
		s.cfg.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.certDER = cert.Certificate[0]
	}
	t.Cleanup(func() {
		s.Stop()
		s.mu.Lock()
		s.finished = true
		s.mu.Unlock()
	})
	s.Start()
	return s
}

// CAFile writes the server's self-signed STARTTLS certificate as PEM to a
// file in the test's temporary directory and returns its path: what a
// client trusts to verify the server (the email plugin's smtp_ca_file).
// The server must have been started WithSTARTTLS.
func (s *SMTPServer) CAFile(t testing.TB) string {
	t.Helper()
	if s.certDER == nil {
		t.Fatal("smtp server: CAFile needs WithSTARTTLS")
	}
	path := filepath.Join(t.TempDir(), "smtp-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.certDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Addr is the server's host:port. It stays the same across Stop and
// Start.
func (s *SMTPServer) Addr() string {
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	return s.addr
}

// Start starts the server again after Stop, on the same address; it does
// nothing while the server runs. It fails the test when the address
// cannot be taken.
func (s *SMTPServer) Start() {
	s.t.Helper()
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	if s.srv != nil {
		return
	}
	var ln net.Listener
	var err error
	// The port was ours a moment ago; another test may hold it briefly.
	for try := 0; try < 50; try++ {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("smtp server: listen on %s: %v", s.addr, err)
	}
	s.addr = ln.Addr().String()
	s.mu.Lock()
	s.stopping = false
	s.mu.Unlock()

	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "localhost"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 10 << 20
	srv.MaxRecipients = 50
	srv.TLSConfig = s.cfg.tls
	srv.AllowInsecureAuth = s.cfg.tls == nil
	srv.ErrorLog = smtpLog{s}
	s.srv, s.ln, s.served = srv, &trackingListener{Listener: ln, conns: map[net.Conn]struct{}{}}, make(chan struct{})
	go func(srv *smtp.Server, ln net.Listener, served chan struct{}) {
		defer close(served)
		_ = srv.Serve(ln)
	}(srv, s.ln, s.served)
}

// Stop closes the listener and every connection at once, as a crashed or
// unplugged server would, and returns when the sessions have ended:
// Messages is then final until Start. Clients see their connection reset
// and new connections refused. Stop does nothing on a stopped server.
func (s *SMTPServer) Stop() {
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	if s.srv == nil {
		return
	}
	s.ln.closeAll()
	_ = s.srv.Close()
	<-s.served
	s.mu.Lock()
	for s.sessions > 0 {
		s.ended.Wait()
	}
	s.mu.Unlock()
	s.srv, s.ln = nil, nil
}

// StopAfter makes the server accept n more messages and then stop: the
// next MAIL FROM after the n-th message is answered "421 4.3.2 shutting
// down" (when the reply still gets out) and the server stops as Stop
// does. A client therefore knows that each of the n messages was
// accepted. A negative n removes the limit.
func (s *SMTPServer) StopAfter(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopAfter = n
}

// Messages returns a copy of the messages accepted so far, in the order
// they were accepted.
func (s *SMTPServer) Messages() []SMTPMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SMTPMessage, len(s.msgs))
	for i, m := range s.msgs {
		m.To = slices.Clone(m.To)
		m.Data = bytes.Clone(m.Data)
		out[i] = m
	}
	return out
}

// Count returns how many messages were accepted so far.
func (s *SMTPServer) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// WaitFor waits until at least n messages have been accepted, and fails
// the test with what arrived when that takes longer than timeout.
func (s *SMTPServer) WaitFor(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := s.Count()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtp server: got %d messages after %v, want %d", got, timeout, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *SMTPServer) newSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions++
	return &smtpSession{s: s, conn: c}, nil
}

func (s *SMTPServer) endSession() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions--
	s.ended.Broadcast()
}

// accept stores m and counts it against the StopAfter limit.
func (s *SMTPServer) accept(m SMTPMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	if s.stopAfter > 0 {
		s.stopAfter--
	}
}

// shouldStop reports whether a new message must be refused because the
// StopAfter limit was reached, and marks the server as stopping.
func (s *SMTPServer) shouldStop() (first bool, stop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopAfter != 0 {
		return false, false
	}
	first = !s.stopping
	s.stopping = true
	s.stopAfter = -1
	return first, true
}

func (s *SMTPServer) logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.finished {
		s.t.Logf("smtp server: "+format, args...)
	}
}

type smtpLog struct{ s *SMTPServer }

func (l smtpLog) Printf(format string, v ...any) { l.s.logf(format, v...) }
func (l smtpLog) Println(v ...any)               { l.s.logf("%s", strings.TrimSuffix(fmt.Sprintln(v...), "\n")) }

// smtpSession is one client connection's state.
type smtpSession struct {
	s    *SMTPServer
	conn *smtp.Conn
	user string
	from string
	to   []string
	done bool
}

var (
	errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errShuttingDown = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service shutting down"}
)

func (ss *smtpSession) AuthMechanisms() []string {
	if ss.s.cfg.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	if ss.s.cfg.user == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, password string) error {
		if (identity != "" && identity != user) || user != ss.s.cfg.user || password != ss.s.cfg.pwd {
			return smtp.ErrAuthFailed
		}
		ss.user = user
		return nil
	}), nil
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if first, stop := ss.s.shouldStop(); stop {
		if first {
			go ss.s.Stop()
		}
		return errShuttingDown
	}
	if ss.s.cfg.user != "" && ss.user == "" {
		return errAuthRequired
	}
	ss.from, ss.to = from, nil
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.s.cfg.reject[strings.ToLower(to)] {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<" + to + ">: mailbox unavailable"}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	if ss.s.cfg.countOnly {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
		ss.s.accept(SMTPMessage{From: ss.from, To: ss.to, User: ss.user})
		ss.from, ss.to = "", nil
		return nil
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := SMTPMessage{From: ss.from, To: ss.to, Data: data, User: ss.user}
	_, m.TLS = ss.conn.TLSConnectionState()
	if msg, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		m.Header = msg.Header
		m.MessageID = msg.Header.Get("Message-Id")
	}
	ss.s.accept(m)
	ss.from, ss.to = "", nil
	return nil
}

func (ss *smtpSession) Reset() { ss.from, ss.to = "", nil }

func (ss *smtpSession) Logout() error {
	if !ss.done {
		ss.done = true
		ss.s.endSession()
	}
	return nil
}

// trackingListener keeps the connections it accepted, so that Stop can
// close every one of them, including one accepted just before.
type trackingListener struct {
	net.Listener
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.conns[c] = struct{}{}
	return &trackedConn{Conn: c, l: l}, nil
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	_ = l.Listener.Close()
	for c := range l.conns {
		_ = c.Close()
	}
	clear(l.conns)
}

type trackedConn struct {
	net.Conn
	l *trackingListener
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c.Conn)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// selfSignedCert makes a short-lived ECDSA certificate for the loopback
// addresses.
func selfSignedCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "enginetest SMTP server"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
