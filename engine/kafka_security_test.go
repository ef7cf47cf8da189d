package engine_test

import (
	"context"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/billing-engine/billing/engine"
	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/plugins/branch/router"
)

// saslVars are the pipeline settings that make the engine authenticate
// with mechanism as user.
func saslVars(mechanism, user, password string) map[string]string {
	return map[string]string{
		"BILLING_KAFKA_SASL_MECHANISM": mechanism,
		"BILLING_KAFKA_SASL_USER":      user,
		"BILLING_KAFKA_SASL_PASSWORD":  password,
	}
}

// tlsVars are the pipeline settings that turn TLS on, trusting the CA in
// caFile.
func tlsVars(caFile string) map[string]string {
	return map[string]string{"BILLING_KAFKA_TLS": "true", "BILLING_KAFKA_TLS_CA_FILE": caFile}
}

// merged returns the union of ms; later maps win.
func merged(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// TestKafkaSecurity runs the pipeline against brokers that require SASL,
// TLS or both, set through the BILLING_KAFKA_SASL_* and BILLING_KAFKA_TLS*
// settings of pipelines/billing.yaml, and checks every record reaches its
// branch topic.
func TestKafkaSecurity(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	ca := enginetest.NewCA(t)
	certFile, keyFile := ca.ClientCertFiles(t)
	reg := registry(t)
	for _, tc := range []struct {
		name   string
		broker []enginetest.BrokerOption
		vars   map[string]string
	}{
		{"SASL PLAIN",
			[]enginetest.BrokerOption{enginetest.WithSASLUser("PLAIN", "billing", "plain-secret")},
			saslVars("PLAIN", "billing", "plain-secret")},
		{"SASL SCRAM-SHA-256",
			[]enginetest.BrokerOption{enginetest.WithSASLUser("SCRAM-SHA-256", "billing", "scram-256-secret")},
			saslVars("SCRAM-SHA-256", "billing", "scram-256-secret")},
		{"SASL SCRAM-SHA-512",
			[]enginetest.BrokerOption{enginetest.WithSASLUser("SCRAM-SHA-512", "billing", "scram-512-secret")},
			saslVars("SCRAM-SHA-512", "billing", "scram-512-secret")},
		{"TLS with a custom CA",
			[]enginetest.BrokerOption{enginetest.WithTLS(ca)},
			tlsVars(ca.CertFile)},
		{"TLS with a client certificate",
			[]enginetest.BrokerOption{enginetest.WithTLS(ca), enginetest.WithClientCerts()},
			merged(tlsVars(ca.CertFile), map[string]string{"BILLING_KAFKA_TLS_CERT_FILE": certFile, "BILLING_KAFKA_TLS_KEY_FILE": keyFile})},
		{"TLS without verification",
			[]enginetest.BrokerOption{enginetest.WithTLS(ca)},
			map[string]string{"BILLING_KAFKA_TLS": "true", "BILLING_KAFKA_TLS_INSECURE_SKIP_VERIFY": "true"}},
		{"SASL_SSL SCRAM-SHA-512",
			[]enginetest.BrokerOption{enginetest.WithTLS(ca), enginetest.WithSASLUser("SCRAM-SHA-512", "billing", "sasl-ssl-secret")},
			merged(tlsVars(ca.CertFile), saslVars("SCRAM-SHA-512", "billing", "sasl-ssl-secret"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := enginetest.StartBrokerWith(t, tc.broker...)
			checkShutOut(t, b.Addr())
			startEngine(t, merged(env(t, b.Addr()), tc.vars))
			w := newWorkload(t, reg, 300, 8)
			keys, values := make([][]byte, len(w.records)), make([][]byte, len(w.records))
			for i, r := range w.records {
				keys[i], values[i] = r.Key, r.Value
			}
			cfg := b.ClientConfig()
			enginetest.ProduceWith(t, cfg, b.Addr(), "transactions", keys, values)
			checkRouted(t, cfg, b.Addr(), w)
		})
	}
}

// checkShutOut asserts that a client with neither SASL nor TLS cannot
// use the broker at addr, so that a passing test means the engine got
// through its security.
func checkShutOut(t *testing.T, addr string) {
	t.Helper()
	cfg := enginetest.Config()
	cfg.Metadata.Retry.Max = 0
	c, err := sarama.NewClient([]string{addr}, cfg)
	if err == nil {
		c.Close()
		t.Fatal("a client without SASL or TLS got in: the broker is not secured")
	}
}

// checkRouted asserts every branch topic and the DLQ hold exactly the
// keys the workload routes there, once each, read with cfg.
func checkRouted(t *testing.T, cfg *sarama.Config, addr string, w workload) {
	t.Helper()
	for _, topic := range []string{"transactions.approved", "transactions.declined", "transactions.refunded", "transactions.billed", "transactions.dlq"} {
		want := w.want[topic]
		got := enginetest.ReadAllWith(t, cfg, addr, topic, len(want), time.Second, time.Minute)
		counts := map[string]int{}
		for _, r := range got {
			counts[string(r.Key)]++
			if topic == "transactions.dlq" {
				checkDeadLetter(t, r)
			}
		}
		for _, k := range want {
			if counts[k] != 1 {
				t.Errorf("%s: key %s seen %d times, want 1", topic, k, counts[k])
			}
			delete(counts, k)
		}
		if len(counts) > 0 {
			t.Errorf("%s: %d unexpected keys, e.g. %v", topic, len(counts), firstKeys(counts, 3))
		}
	}
}

// TestKafkaSecurityRefused runs the engine with credentials or a CA the
// broker does not accept: it must not become ready, and the error Run
// returns, whether it gives up by itself or keeps retrying until its
// context ends, must name the problem.
func TestKafkaSecurityRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	ca, other := enginetest.NewCA(t), enginetest.NewCA(t)
	for _, tc := range []struct {
		name   string
		broker []enginetest.BrokerOption
		vars   map[string]string
		want   string
	}{
		{"wrong SCRAM password",
			[]enginetest.BrokerOption{enginetest.WithSASLUser("SCRAM-SHA-256", "billing", "right")},
			saslVars("SCRAM-SHA-256", "billing", "wrong"),
			"SASL Authentication failed: Authentication failed: invalid username or password for SASL mechanism SCRAM-SHA-256"},
		{"wrong PLAIN password over TLS",
			[]enginetest.BrokerOption{enginetest.WithTLS(ca), enginetest.WithSASLUser("PLAIN", "billing", "right")},
			merged(tlsVars(ca.CertFile), saslVars("PLAIN", "billing", "wrong")),
			"SASL Authentication failed: Authentication failed: invalid username or password for SASL mechanism PLAIN"},
		{"untrusted CA",
			[]enginetest.BrokerOption{enginetest.WithTLS(ca)},
			tlsVars(other.CertFile),
			"tls: failed to verify certificate: x509: certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each waits out a few seconds, with its own broker and engine
			b := enginetest.StartBrokerWith(t, tc.broker...)
			vars := merged(env(t, b.Addr()), tc.vars)
			var logs syncBuffer // the engine's log, shown when the test fails
			e, err := engine.New(pipelineFile(t, vars),
				engine.WithProcessor(router.Name, router.New),
				engine.WithLookupEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }),
				engine.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			if err != nil {
				t.Fatalf("engine.New: %v", err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- e.Run(ctx) }()

			var runErr error
			stopped := false
			select {
			case runErr = <-done: // gave up by itself
				stopped = true
			case <-time.After(3 * time.Second): // still trying
			}
			select {
			case <-e.Ready():
				t.Error("engine ready with settings the broker refuses")
			default:
			}
			if !stopped {
				cancel()
				select {
				case runErr = <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("engine.Run did not return within 10s of its context ending")
				}
			}
			if runErr == nil || !strings.Contains(runErr.Error(), tc.want) {
				t.Errorf("engine.Run: got %v, want an error naming %q\nlog:\n%s", runErr, tc.want, logs.String())
			}
		})
	}
}
