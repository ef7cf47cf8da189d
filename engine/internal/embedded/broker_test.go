package embedded_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/internal/embedded"
)

// start starts a broker in memory on a free loopback port until the test ends.
func start(t *testing.T, opts ...embedded.Option) *embedded.Broker {
	t.Helper()
	b, err := embedded.Start("127.0.0.1:0", "", append([]embedded.Option{embedded.Partitions(1)}, opts...)...)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// connect opens and closes a sarama client (SaslAuthenticate v1) to addr
// with the SASL user s, if any, and tc, if not nil.
func connect(addr string, s *enginetest.SASL, tc *tls.Config) error {
	cfg := enginetest.Config()
	cfg.Metadata.Retry.Max = 0
	cfg.Net.DialTimeout = 5 * time.Second
	if s != nil {
		enginetest.SetSASL(cfg, *s)
	}
	if tc != nil {
		cfg.Net.TLS.Enable = true
		cfg.Net.TLS.Config = tc
	}
	c, err := sarama.NewClient([]string{addr}, cfg)
	if err != nil {
		return err
	}
	return c.Close()
}

// ping connects with franz-go (SaslAuthenticate v2) as user with password.
func ping(t *testing.T, addr, mechanism, user, password string) error {
	var m sasl.Mechanism
	switch mechanism {
	case "PLAIN":
		m = plain.Auth{User: user, Pass: password}.AsMechanism()
	case "SCRAM-SHA-256":
		m = scram.Auth{User: user, Pass: password}.AsSha256Mechanism()
	default:
		m = scram.Auth{User: user, Pass: password}.AsSha512Mechanism()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.SASL(m))
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}

func TestSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			b := start(t, embedded.SASLUser(mech, "billing", "right"), embedded.SASLUser(mech, "other", "pass"))
			for _, user := range []enginetest.SASL{{Mechanism: mech, User: "billing", Password: "right"}, {Mechanism: mech, User: "other", Password: "pass"}} {
				if err := connect(b.Addr(), &user, nil); err != nil {
					t.Errorf("sarama as %s: %v", user.User, err)
				}
				if err := ping(t, b.Addr(), mech, user.User, user.Password); err != nil {
					t.Errorf("franz-go as %s: %v", user.User, err)
				}
			}
			want := "invalid username or password for SASL mechanism " + mech
			for _, bad := range []enginetest.SASL{{Mechanism: mech, User: "billing", Password: "wrong"}, {Mechanism: mech, User: "nobody", Password: "right"}} {
				err := connect(b.Addr(), &bad, nil)
				if !errors.Is(err, sarama.ErrSASLAuthenticationFailed) || !strings.Contains(err.Error(), want) {
					t.Errorf("sarama as %s/%s: got %v, want %v naming %q", bad.User, bad.Password, err, sarama.ErrSASLAuthenticationFailed, want)
				}
				if err := ping(t, b.Addr(), mech, bad.User, bad.Password); err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("franz-go as %s/%s: got %v, want an error naming %q", bad.User, bad.Password, err, want)
				}
			}
			if err := connect(b.Addr(), nil, nil); err == nil {
				t.Error("a client without SASL got in")
			}
		})
	}
}

func TestSASLOtherMechanism(t *testing.T) {
	b := start(t, embedded.SASLUser("SCRAM-SHA-256", "billing", "right"))
	err := connect(b.Addr(), &enginetest.SASL{Mechanism: "SCRAM-SHA-512", User: "billing", Password: "right"}, nil)
	if !errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
		t.Errorf("SCRAM-SHA-512 for a SCRAM-SHA-256 user: got %v, want %v", err, sarama.ErrSASLAuthenticationFailed)
	}
}

func TestTLS(t *testing.T) {
	ca, other := enginetest.NewCA(t), enginetest.NewCA(t)
	user := &enginetest.SASL{Mechanism: "SCRAM-SHA-512", User: "billing", Password: "right"}
	for _, tc := range []struct {
		name string
		sasl []embedded.Option
		user *enginetest.SASL
	}{
		{"TLS", nil, nil},
		{"SASL_SSL", []embedded.Option{embedded.SASLUser(user.Mechanism, user.User, user.Password)}, user},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := start(t, append(tc.sasl, embedded.TLS(ca.ServerTLS(t)))...)
			if err := connect(b.Addr(), tc.user, &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}); err != nil {
				t.Errorf("trusting the CA: %v", err)
			}
			err := connect(b.Addr(), tc.user, &tls.Config{RootCAs: other.Pool(), MinVersion: tls.VersionTLS12})
			if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
				t.Errorf("trusting another CA: got %v, want an unknown authority", err)
			}
			if err := connect(b.Addr(), tc.user, nil); err == nil {
				t.Error("a plaintext client got in")
			}
			if tc.user != nil {
				bad := *tc.user
				bad.Password = "wrong"
				err := connect(b.Addr(), &bad, &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12})
				if !errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
					t.Errorf("wrong password over TLS: got %v, want %v", err, sarama.ErrSASLAuthenticationFailed)
				}
			}
		})
	}
}

func TestStartRejectsBadSecurity(t *testing.T) {
	for name, opt := range map[string]embedded.Option{
		"mechanism":   embedded.SASLUser("GSSAPI", "billing", "x"),
		"user":        embedded.SASLUser("PLAIN", "", "x"),
		"certificate": embedded.TLS(&tls.Config{MinVersion: tls.VersionTLS12}),
	} {
		b, err := embedded.Start("127.0.0.1:0", "", opt)
		if err == nil {
			b.Close()
		}
		if !errors.Is(err, embedded.ErrConfig) {
			t.Errorf("%s: got %v, want %v", name, err, embedded.ErrConfig)
		}
	}
}
