package sdk

import (
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// ProtocolVersion is the version of the plugin protocol (pluginpb) this SDK
// speaks. The engine refuses a plugin built with another version, during
// the go-plugin handshake, before any call. Version 2 carries a batch and
// its results packed in one bytes field each (pluginpb's packed format)
// instead of one protobuf message per record.
const ProtocolVersion = 2

// PluginName is the name the processor plugin is dispensed under in the
// go-plugin plugin set.
const PluginName = "processor"

// LogLevelEnv is the environment variable the engine sets to the lowest
// level its log shows ("debug", "info", "warn" or "error"); Serve's
// Config.Logger drops records below it. Default "info".
const LogLevelEnv = "ENGINE_PLUGIN_LOG_LEVEL"

// MaxMessageBytes bounds one gRPC message (a batch or its results) in
// either direction.
const MaxMessageBytes = 256 << 20

// windowBytes is the HTTP/2 flow-control window of the plugin connection,
// large enough that a batch crosses without waiting for window updates.
const windowBytes = 8 << 20

// Handshake is the go-plugin handshake between the engine and a plugin. The
// magic cookie only tells a plugin that it was started by the engine (run
// by hand, it says so and exits); it is not a security measure.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "BILLING_ENGINE_PLUGIN",
	MagicCookieValue: "d6c0b8e4-stage-processor",
}

// ServeOption configures Serve.
type ServeOption func(*serveOptions)

type serveOptions struct {
	info Info
}

// WithInfo sets what the plugin tells the engine about itself. Fields left
// empty keep their defaults: the binary's base name and the main module's
// version.
func WithInfo(info Info) ServeOption {
	return func(o *serveOptions) {
		if info.Name != "" {
			o.info.Name = info.Name
		}
		if info.Version != "" {
			o.info.Version = info.Version
		}
		o.info.Outputs = info.Outputs
	}
}

// Serve serves the Processors that factory builds to the engine that
// started this binary, and returns when the engine closes the plugin (the
// processor's Close, if it has one, has then been called). Call it from
// main:
//
//	func main() { sdk.Serve(tagger.New) }
//
// The engine calls factory once per start with the stage's Config; a
// factory error fails the configuration with the error's text, which
// should name the setting. Config.Logger writes to the engine's log.
//
// Run by hand, outside the engine, the binary prints that it is a plugin
// and exits with status 1. Serve also exits the process when the engine
// that started it dies, so plugins do not outlive a killed engine.
//
// A plugin's heap is small and each batch allocates its decoded records,
// so Serve sets the garbage collector's target to 400% (GOGC=400) unless
// the GOGC environment variable says otherwise.
func Serve(factory Factory, opts ...ServeOption) {
	o := serveOptions{info: defaultInfo()}
	for _, opt := range opts {
		opt(&o)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	// Serve points os.Stderr at the engine's stdio stream; log lines go to
	// the real stderr, which the engine reads and parses.
	stderr := os.Stderr
	level := levelFromEnv(os.Getenv(LogLevelEnv))
	log := slog.New(newLogHandler(stderr, level))
	// Once the engine is gone its end of stderr is closed: a log line
	// must then fail, not kill the plugin with SIGPIPE in the middle of a
	// call it is finishing (see watchParent).
	signal.Ignore(syscall.SIGPIPE)
	srv := newServer(factory, o.info, log)
	defer srv.close()
	go watchParent(os.Getppid(), time.Second, srv)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{PluginName: &Plugin{server: srv}},
		GRPCServer:      grpcServer,
		Logger:          hclogTo(stderr, level),
	})
}

// grpcServer is go-plugin's default server with room for large batches.
func grpcServer(opts []grpc.ServerOption) *grpc.Server {
	return plugin.DefaultGRPCServer(append(opts,
		grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.InitialWindowSize(windowBytes), grpc.InitialConnWindowSize(windowBytes)))
}

func defaultInfo() Info {
	info := Info{Name: filepath.Base(os.Args[0]), Version: "(devel)"}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		info.Version = bi.Main.Version
	}
	return info
}

// hclogTo is the logger go-plugin's own server side writes to: JSON that
// the engine parses back into levels.
func hclogTo(w io.Writer, level slog.Level) hclog.Logger {
	l := hclog.Info
	switch {
	case level <= slog.LevelDebug:
		l = hclog.Debug
	case level >= slog.LevelError:
		l = hclog.Error
	case level >= slog.LevelWarn:
		l = hclog.Warn
	}
	return hclog.New(&hclog.LoggerOptions{Output: w, Level: l, JSONFormat: true})
}

// watchParent exits the process once its parent, the engine, has gone:
// an engine killed with SIGKILL cannot stop its plugins itself. Process
// calls in flight are finished first (for up to drainTimeout), so that
// their effects outside Kafka, an email sent, are complete and recorded
// rather than cut in half; the engine that replaces the dead one retries
// their batches and finds them done.
func watchParent(ppid int, every time.Duration, srv *server) {
	if ppid <= 1 {
		return
	}
	for range time.Tick(every) {
		if os.Getppid() != ppid {
			break
		}
	}
	deadline := time.Now().Add(drainTimeout)
	for srv.inflight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	srv.log.Warn("the engine that started this plugin is gone; exiting", "inflight", srv.inflight.Load())
	_ = srv.close()
	os.Exit(3)
}

// drainTimeout bounds how long a plugin whose engine died waits for its
// calls in flight.
const drainTimeout = 30 * time.Second
