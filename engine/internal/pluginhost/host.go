package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/billing-engine/billing/engine/internal/pluginrpc"
	"github.com/billing-engine/billing/engine/sdk"
)

// DefaultTimeout bounds one call when Spec.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Spec is a plugin binary and how to call it.
type Spec struct {
	// Name is the plugin's name in the pipeline file, for logs and errors.
	Name string
	// Command is the path of the binary; Args are passed to it.
	Command string
	Args    []string
	// SHA256, when set, pins the binary's checksum (64 hex digits): a
	// binary that does not match is not started.
	SHA256 string
	// Timeout bounds each call (Info, Configure, Process). A Process call
	// that exceeds it counts as a hung plugin, which is killed and
	// restarted. Zero means DefaultTimeout.
	Timeout time.Duration
}

// Option configures Start.
type Option func(*options)

type options struct {
	log          *slog.Logger
	minBackoff   time.Duration
	maxBackoff   time.Duration
	startTimeout time.Duration
}

// WithLogger sets the logger; the host adds plugin=<name> to every record,
// its own and the plugin's. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithBackoff sets the wait before a restart: min after a plugin that had
// been working, doubling with each restart in a row up to max. Default
// 100ms doubling to 5s.
func WithBackoff(min, max time.Duration) Option {
	return func(o *options) { o.minBackoff, o.maxBackoff = min, max }
}

// WithStartTimeout bounds how long the plugin may take to start and
// complete the handshake. Default 30s.
func WithStartTimeout(d time.Duration) Option { return func(o *options) { o.startTimeout = d } }

// Plugin is a running plugin process behind an sdk.Processor. It is safe
// for concurrent use: Process calls from several partitions share the
// process. When the process crashes, its connection breaks or a call
// exceeds Spec.Timeout, the failing call returns an error wrapping
// ErrPluginShutdown and the plugin is killed and started again in the
// background, with backoff; calls in the meantime wait for it (within their
// context). The caller MUST call Close.
type Plugin struct {
	spec Spec
	cfg  sdk.Config
	o    options
	log  *slog.Logger
	info sdk.Info

	backoff  atomic.Int64 // the wait before the next restart, in ns
	restarts atomic.Int64

	stopCtx context.Context // ends restart loops when Close is called
	stop    context.CancelFunc
	wg      sync.WaitGroup // restart loops

	mu     sync.Mutex
	cur    *instance     // nil while restarting and after Close
	ready  chan struct{} // closed when cur is set, or on Close
	closed bool
}

// Start starts the plugin binary described by spec, completes the
// handshake (go-plugin over gRPC with mutual TLS, sdk.Handshake), asks for
// its Info and configures it with cfg. Errors are *Error values wrapping
// ErrCommand, ErrChecksum, ErrHandshake or ErrConfigure. ctx bounds the
// start, not the Plugin's life.
func Start(ctx context.Context, spec Spec, cfg sdk.Config, opts ...Option) (*Plugin, error) {
	o := options{
		log:          slog.New(slog.DiscardHandler),
		minBackoff:   100 * time.Millisecond,
		maxBackoff:   5 * time.Second,
		startTimeout: 30 * time.Second,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if spec.Timeout <= 0 {
		spec.Timeout = DefaultTimeout
	}
	p := &Plugin{spec: spec, cfg: cfg, o: o, log: o.log.With("plugin", spec.Name)}
	p.backoff.Store(int64(o.minBackoff))
	p.stopCtx, p.stop = context.WithCancel(context.Background())
	in, info, err := p.launch(ctx)
	if err != nil {
		p.stop()
		return nil, &Error{Plugin: spec.Name, Err: err}
	}
	p.cur, p.info = in, info
	p.ready = make(chan struct{})
	close(p.ready)
	p.log.Debug("plugin started", "pid", in.pid, "name", info.Name, "version", info.Version)
	return p, nil
}

// Info is what the plugin said about itself when it first started.
func (p *Plugin) Info() sdk.Info { return p.info }

// Restarts is how many times the plugin has been restarted.
func (p *Plugin) Restarts() int64 { return p.restarts.Load() }

// Process sends batch to the plugin and returns its results. Errors are
// *Error values: wrapping ErrPluginShutdown when the plugin crashed or
// hung (it is being restarted), ErrClosed after Close, or the plugin's own
// error.
func (p *Plugin) Process(ctx context.Context, batch []sdk.Record) ([]sdk.Result, error) {
	in, err := p.await(ctx)
	if err != nil {
		return nil, &Error{Plugin: p.spec.Name, Err: err}
	}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, p.spec.Timeout)
	defer cancel()
	results, err := in.rpc.Process(cctx, batch)
	if err == nil {
		if p.backoff.Load() != int64(p.o.minBackoff) {
			p.backoff.Store(int64(p.o.minBackoff))
		}
		return results, nil
	}
	if reason := p.diagnose(ctx, cctx, in, err, time.Since(start)); reason != "" {
		p.restart(in, reason)
		return nil, &Error{Plugin: p.spec.Name, Err: fmt.Errorf("%w: %s; restarting it", ErrPluginShutdown, reason)}
	}
	return nil, &Error{Plugin: p.spec.Name, Err: err}
}

// await returns the running instance, waiting while it restarts.
func (p *Plugin) await(ctx context.Context) (*instance, error) {
	for {
		p.mu.Lock()
		cur, ready, closed := p.cur, p.ready, p.closed
		p.mu.Unlock()
		switch {
		case closed:
			return nil, ErrClosed
		case cur != nil:
			return cur, nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: still restarting: %w", ErrPluginShutdown, context.Cause(ctx))
		}
	}
}

// diagnose says why a failed call means the plugin must be restarted, or
// returns "" for a failure the plugin reported itself or a caller that
// went away.
func (p *Plugin) diagnose(ctx, cctx context.Context, in *instance, err error, took time.Duration) string {
	if errors.Is(ctx.Err(), context.Canceled) {
		return ""
	}
	// The plugin's own gRPC server learns the deadline too and may reset
	// the stream a moment before this side's timer fires: the time taken
	// says it as well as cctx does.
	if errors.Is(cctx.Err(), context.DeadlineExceeded) || took >= p.spec.Timeout {
		return fmt.Sprintf("hung: no answer after %s", took.Round(time.Millisecond))
	}
	if in.client.Exited() {
		return "process exited"
	}
	var rpcErr *pluginrpc.Error
	if errors.As(err, &rpcErr) && (rpcErr.Code == codes.Unavailable || rpcErr.Code == codes.Canceled) {
		return "connection lost: " + rpcErr.Message
	}
	return ""
}

// restart replaces in, once: of several calls that failed on in, the
// first starts the restart loop and the others return.
func (p *Plugin) restart(in *instance, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.cur != in {
		return
	}
	p.cur = nil
	p.ready = make(chan struct{})
	p.wg.Add(1)
	go p.supervise(in, reason)
}

// supervise kills the failed instance and starts a new one, with backoff,
// until one starts or the Plugin is closed.
func (p *Plugin) supervise(old *instance, reason string) {
	defer p.wg.Done()
	if old.exitedWithin(200*time.Millisecond) && reason != "process exited" {
		reason = "process exited (" + reason + ")"
	}
	old.kill()
	n := p.restarts.Add(1)
	for {
		wait := time.Duration(p.backoff.Load())
		p.backoff.Store(int64(min(2*wait, p.o.maxBackoff)))
		p.log.Warn("plugin restarting", "reason", reason, "restart", n, "backoff", wait, "old_pid", old.pid)
		select {
		case <-p.stopCtx.Done():
			return
		case <-time.After(wait):
		}
		in, _, err := p.launch(p.stopCtx)
		if err == nil {
			p.install(in)
			return
		}
		if p.stopCtx.Err() != nil {
			return
		}
		reason = "restart failed: " + err.Error()
	}
}

// install makes in the running instance and wakes the waiting calls.
func (p *Plugin) install(in *instance) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		in.stop()
		return
	}
	p.cur = in
	close(p.ready)
	p.mu.Unlock()
	p.log.Info("plugin restarted", "pid", in.pid)
}

// Close stops the plugin: it asks the process to shut down (the plugin
// closes its Processor) and kills it if it has not exited within two
// seconds. Calls in flight fail. It is safe to call more than once.
func (p *Plugin) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	cur := p.cur
	p.cur = nil
	if cur == nil {
		close(p.ready) // wake the calls waiting for a restart
	}
	p.mu.Unlock()
	p.stop()
	p.wg.Wait()
	if cur != nil {
		cur.stop()
	}
	return nil
}
