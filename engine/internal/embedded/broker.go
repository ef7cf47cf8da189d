// Package embedded runs a Kafka-protocol broker inside the process, kept on
// disk, so that a fresh machine runs the engine with nothing installed.
//
// It is the only package that knows the embedded broker is not a real Kafka
// cluster: everything else talks to it over TCP through sarama, exactly as it
// would to any cluster.
package embedded

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// ErrListen is returned when the broker cannot listen on its address.
var ErrListen = errors.New("embedded: listen")

// ErrConfig is returned by Start for options it cannot use.
var ErrConfig = errors.New("embedded: config")

// Broker is a running embedded Kafka broker. Close must be called to flush
// its log to disk.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
}

// Option configures Start.
type Option func(*config)

type config struct {
	partitions int
	log        *slog.Logger
	users      []saslUser
	tls        *tls.Config
	extra      []kfake.Opt
}

type saslUser struct{ mechanism, user, password string }

// Partitions sets the partition count of auto-created topics. Default 8.
func Partitions(n int) Option { return func(c *config) { c.partitions = n } }

// Logger sets the logger for broker warnings and errors. Default: discard.
func Logger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// SASLUser turns SASL authentication on and adds a user that may do
// everything, authenticating with mechanism: PLAIN, SCRAM-SHA-256 or
// SCRAM-SHA-512. It may be given several times, for several users or one
// user with several mechanisms. Once SASL is on, a client that does not
// authenticate is disconnected, and one that fails to is answered
// SASL_AUTHENTICATION_FAILED with a message, as Kafka does, then
// disconnected. Default: no SASL, every client is let in.
func SASLUser(mechanism, user, password string) Option {
	return func(c *config) { c.users = append(c.users, saslUser{mechanism, user, password}) }
}

// TLS makes the broker accept TLS connections only, set up with tc, whose
// Certificates MUST hold the broker's certificate. Start keeps tc; the
// caller must not change it afterwards. Default: plaintext.
func TLS(tc *tls.Config) Option { return func(c *config) { c.tls = tc } }

// Start starts a single-node broker listening on addr (host:port; port 0
// picks a free port) that keeps its log under dataDir ("" keeps it in
// memory). The caller MUST call Close. Options it cannot use are an
// ErrConfig.
func Start(addr, dataDir string, opts ...Option) (*Broker, error) {
	cfg := config{partitions: 8, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cfg)
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: address %q: %w", ErrListen, addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("%w: port %q: %w", ErrListen, portStr, err)
	}
	sec, err := cfg.security()
	if err != nil {
		return nil, err
	}
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.DefaultNumPartitions(cfg.partitions),
		kfake.AllowAutoTopicCreation(),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return cfg.listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
		kfake.WithLogger(logAdapter{cfg.log}),
	}
	if dataDir != "" {
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, fmt.Errorf("embedded: data dir: %w", err)
		}
		kopts = append(kopts, kfake.DataDir(dataDir))
	}
	kopts = append(kopts, sec...)
	kopts = append(kopts, cfg.extra...)
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrListen, addr, err)
	}
	return &Broker{cluster: c, addr: c.ListenAddrs()[0]}, nil
}

// security returns the kfake options for SASL, and checks the TLS setting.
func (c *config) security() ([]kfake.Opt, error) {
	var opts []kfake.Opt
	for _, u := range c.users {
		switch u.mechanism {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			return nil, fmt.Errorf("%w: sasl mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", ErrConfig, u.mechanism)
		}
		if u.user == "" {
			return nil, fmt.Errorf("%w: sasl user: empty", ErrConfig)
		}
		opts = append(opts, kfake.Superuser(u.mechanism, u.user, u.password))
	}
	if len(opts) > 0 {
		opts = append(opts, kfake.EnableSASL())
	}
	if c.tls != nil && len(c.tls.Certificates) == 0 && c.tls.GetCertificate == nil {
		return nil, fmt.Errorf("%w: tls: no server certificate", ErrConfig)
	}
	return opts, nil
}

// listen listens on addr, with TLS when configured. With SASL users, the
// listener answers failed authentications as Kafka does (see authConn);
// it wraps the connections inside TLS, where the Kafka protocol is plain,
// which is why TLS is set up here and not with kfake.TLS.
func (c *config) listen(network, addr string) (net.Listener, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	if c.tls != nil {
		ln = tls.NewListener(ln, c.tls)
	}
	if len(c.users) > 0 {
		ln = authListener{ln}
	}
	return ln, nil
}

// Addr returns the host:port the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker and writes its state to the data dir.
func (b *Broker) Close() { b.cluster.Close() }

type logAdapter struct{ l *slog.Logger }

func (a logAdapter) Logf(level kfake.LogLevel, msg string, args ...any) {
	var lvl slog.Level
	switch level {
	case kfake.LogLevelError:
		lvl = slog.LevelError
	case kfake.LogLevelWarn:
		lvl = slog.LevelDebug // kfake warns of slow requests, not of faults
	default:
		return
	}
	a.l.Log(context.Background(), lvl, fmt.Sprintf(msg, args...), "component", "embedded-kafka")
}
