package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/billing-engine/billing/engine/avro"
	"github.com/billing-engine/billing/engine/sdk/pluginpb"
)

// CodeUnavailable is the gRPC status code of a Process call that failed
// with an error wrapping ErrUnavailable. It is Aborted ("retry at a higher
// level"), not Unavailable, which gRPC itself uses for a lost connection:
// the engine restarts a plugin whose connection is lost, and only waits
// for one whose dependency is down.
const CodeUnavailable = codes.Aborted

// ErrClientHalf is returned by Plugin.GRPCClient: Plugin is the plugin's
// side of the connection only.
var ErrClientHalf = errors.New("sdk: Plugin serves a Processor; the engine provides the client")

// Plugin is the go-plugin plugin.GRPCPlugin that serves the Processors a
// Factory builds over the protocol in package pluginpb. Serve uses one;
// package sdktest uses one to run a Processor through the real gRPC path.
// Plugin authors need only Serve. The caller MUST call Close when done.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	server *server
}

// NewPlugin returns the serving half of a processor plugin. log receives
// the processor's Config.Logger records; nil discards them.
func NewPlugin(factory Factory, info Info, log *slog.Logger) *Plugin {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Plugin{server: newServer(factory, info, log)}
}

// GRPCServer registers the Base and Processor services on s.
func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pluginpb.RegisterBaseServer(s, baseServer{server: p.server})
	pluginpb.RegisterProcessorServer(s, processorServer{server: p.server})
	return nil
}

// GRPCClient returns ErrClientHalf.
func (p *Plugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, ErrClientHalf
}

// Close closes the configured Processor, if it is a Closer.
func (p *Plugin) Close() error { return p.server.close() }

// server holds the configured stage. Process calls run concurrently;
// Configure swaps the stage under mu.
type server struct {
	factory Factory
	info    Info
	log     *slog.Logger

	mu    sync.RWMutex
	stage *stage // nil until configured

	// inflight counts Process calls running, so that a plugin whose
	// engine died finishes them before it exits.
	inflight atomic.Int64
}

// stage is one configured Processor with the schema its records decode
// with (nil: records are not decoded).
type stage struct {
	proc   Processor
	reg    *avro.Registry
	schema *avro.Schema
	log    *slog.Logger
	// decodeData says whether records are decoded: there is a schema and
	// the Processor uses Record.Data (see DataUser).
	decodeData bool
}

func newServer(factory Factory, info Info, log *slog.Logger) *server {
	return &server{factory: factory, info: info, log: log}
}

func (s *server) current() *stage {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.stage
}

func (s *server) close() error {
	s.mu.Lock()
	st := s.stage
	s.stage = nil
	s.mu.Unlock()
	return st.close()
}

func (st *stage) close() error {
	if st == nil {
		return nil
	}
	if c, ok := st.proc.(Closer); ok {
		return c.Close()
	}
	return nil
}

type baseServer struct {
	pluginpb.UnimplementedBaseServer
	*server
}

// Info answers with the plugin's Info.
func (b baseServer) Info(context.Context, *pluginpb.InfoRequest) (*pluginpb.InfoResponse, error) {
	return &pluginpb.InfoResponse{
		Name: b.info.Name, Version: b.info.Version, Outputs: b.info.Outputs,
		ProtocolVersion: ProtocolVersion,
	}, nil
}

// Configure builds the stage's Processor; every configuration problem is
// INVALID_ARGUMENT with a message naming it.
func (b baseServer) Configure(ctx context.Context, req *pluginpb.ConfigureRequest) (*pluginpb.ConfigureResponse, error) {
	st, err := b.configure(ctx, req)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	b.mu.Lock()
	old := b.stage
	b.stage = st
	b.mu.Unlock()
	if err := old.close(); err != nil {
		b.log.Warn("closing the previous processor", "err", err)
	}
	return &pluginpb.ConfigureResponse{}, nil
}

func (b baseServer) configure(ctx context.Context, req *pluginpb.ConfigureRequest) (*stage, error) {
	settings, err := DecodeSettings(req.SettingsJson)
	if err != nil {
		return nil, err
	}
	st := &stage{log: b.log.With("pipeline", req.Pipeline, "stage", req.Stage)}
	if req.SchemasDir != "" {
		if st.reg, err = avro.LoadDir(req.SchemasDir); err != nil {
			return nil, fmt.Errorf("schemas: %w", err)
		}
	}
	if req.Schema != "" {
		if st.reg == nil {
			return nil, fmt.Errorf("schema %q given without a schemas directory", req.Schema)
		}
		if st.schema, err = st.reg.Schema(req.Schema); err != nil {
			return nil, fmt.Errorf("schema: %w", err)
		}
	}
	cfg := Config{
		Name: req.Name, Pipeline: req.Pipeline, Stage: req.Stage, Settings: settings,
		SchemasDir: req.SchemasDir, Schema: req.Schema, Logger: st.log,
	}
	if st.proc, err = b.build(ctx, cfg); err != nil {
		return nil, err
	}
	st.decodeData = st.schema != nil && usesData(st.proc)
	return st, nil
}

// build calls the factory, turning a panic into an error.
func (b baseServer) build(ctx context.Context, cfg Config) (proc Processor, err error) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("factory panicked", "panic", r, "stack", string(debug.Stack()))
			proc, err = nil, fmt.Errorf("factory panicked: %v", r)
		}
	}()
	proc, err = b.factory(ctx, cfg)
	if err == nil && proc == nil {
		err = errors.New("factory returned no Processor and no error")
	}
	return proc, err
}

type processorServer struct {
	pluginpb.UnimplementedProcessorServer
	*server
}

// Process decodes the batch, calls the Processor and encodes its results.
// A record that does not decode gets a DLQ result without reaching the
// Processor. A Processor error or panic fails the call; a batch that is
// not well-formed fails it with INVALID_ARGUMENT.
func (p processorServer) Process(ctx context.Context, req *pluginpb.ProcessRequest) (*pluginpb.ProcessResponse, error) {
	p.inflight.Add(1)
	defer p.inflight.Add(-1)
	st := p.current()
	if st == nil {
		return nil, status.Error(codes.FailedPrecondition, "not configured: Configure must be called first")
	}
	batch, failed, n, err := st.decode(req.Batch)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	var results []Result
	if len(batch) > 0 {
		results, err = st.call(ctx, batch)
		if err != nil {
			if ctx.Err() != nil {
				return nil, status.FromContextError(ctx.Err()).Err()
			}
			if errors.Is(err, ErrUnavailable) {
				return nil, status.Error(CodeUnavailable, err.Error())
			}
			return nil, status.Error(codes.Unknown, err.Error())
		}
		if len(results) != len(batch) {
			return nil, status.Errorf(codes.Internal, "processor returned %d results for %d records", len(results), len(batch))
		}
	}
	return &pluginpb.ProcessResponse{Results: encodeResults(batch, results, n, failed)}, nil
}

// call runs the Processor, turning a panic into an error.
func (st *stage) call(ctx context.Context, batch []Record) (res []Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			st.log.Error("processor panicked", "panic", r, "stack", string(debug.Stack()))
			res, err = nil, fmt.Errorf("processor panicked: %v", r)
		}
	}()
	return st.proc.Process(ctx, batch)
}
