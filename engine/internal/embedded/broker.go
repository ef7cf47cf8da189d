// Package embedded runs a Kafka-protocol broker inside the process, kept on
// disk, so that a fresh machine runs the engine with nothing installed.
//
// It is the only package that knows the embedded broker is not a real Kafka
// cluster: everything else talks to it over TCP through sarama, exactly as it
// would to any cluster.
package embedded

import (
	"context"
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
	extra      []kfake.Opt
}

// Partitions sets the partition count of auto-created topics. Default 8.
func Partitions(n int) Option { return func(c *config) { c.partitions = n } }

// Logger sets the logger for broker warnings and errors. Default: discard.
func Logger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Start starts a single-node broker listening on addr (host:port; port 0
// picks a free port) that keeps its log under dataDir ("" keeps it in
// memory). The caller MUST call Close.
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
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.DefaultNumPartitions(cfg.partitions),
		kfake.AllowAutoTopicCreation(),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
		kfake.WithLogger(logAdapter{cfg.log}),
	}
	if dataDir != "" {
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, fmt.Errorf("embedded: data dir: %w", err)
		}
		kopts = append(kopts, kfake.DataDir(dataDir))
	}
	kopts = append(kopts, cfg.extra...)
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrListen, addr, err)
	}
	return &Broker{cluster: c, addr: c.ListenAddrs()[0]}, nil
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
