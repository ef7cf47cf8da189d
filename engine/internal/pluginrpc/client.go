// Package pluginrpc is the engine's half of the plugin protocol
// (engine/sdk/pluginpb): a client that turns sdk batches into gRPC calls and
// back. Package pluginhost runs plugin processes with it; package
// engine/sdk/sdktest connects it to an in-process sdk.Plugin.
package pluginrpc

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/billing-engine/billing/engine/sdk"
	"github.com/billing-engine/billing/engine/sdk/pluginpb"
)

// ClientPlugin is the client half of the processor plugin for go-plugin's
// plugin set: GRPCClient returns a *Client.
type ClientPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

// GRPCServer fails: the engine does not serve plugins.
func (ClientPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return fmt.Errorf("pluginrpc: the client half cannot serve")
}

// GRPCClient returns a *Client on conn.
func (ClientPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return NewClient(conn), nil
}

// Client calls one plugin process. It is safe for concurrent use.
type Client struct {
	base pluginpb.BaseClient
	proc pluginpb.ProcessorClient
}

// NewClient returns a Client on conn.
func NewClient(conn grpc.ClientConnInterface) *Client {
	return &Client{base: pluginpb.NewBaseClient(conn), proc: pluginpb.NewProcessorClient(conn)}
}

// Info asks the plugin to describe itself, and checks that it speaks
// sdk.ProtocolVersion.
func (c *Client) Info(ctx context.Context) (sdk.Info, error) {
	resp, err := c.base.Info(ctx, &pluginpb.InfoRequest{})
	if err != nil {
		return sdk.Info{}, callError("info", err)
	}
	if resp.ProtocolVersion != sdk.ProtocolVersion {
		return sdk.Info{}, fmt.Errorf("info: plugin speaks protocol version %d, want %d", resp.ProtocolVersion, sdk.ProtocolVersion)
	}
	return sdk.Info{Name: resp.Name, Version: resp.Version, Outputs: resp.Outputs}, nil
}

// Configure builds the plugin's processor from cfg. cfg.Logger is not
// sent: the plugin logs through its stderr.
func (c *Client) Configure(ctx context.Context, cfg sdk.Config) error {
	settings := cfg.Settings
	if settings == nil {
		settings = map[string]any{}
	}
	js, err := json.Marshal(settings)
	if err != nil {
		return fmt.Errorf("configure: settings cannot be sent as JSON: %w", err)
	}
	_, err = c.base.Configure(ctx, &pluginpb.ConfigureRequest{
		Name: cfg.Name, Pipeline: cfg.Pipeline, Stage: cfg.Stage, SettingsJson: js,
		SchemasDir: cfg.SchemasDir, Schema: cfg.Schema,
	})
	if err != nil {
		return callError("configure", err)
	}
	return nil
}

// Process sends batch and returns one Result per record. Emit.Data is
// nil in the results: the engine decodes emitted values itself. An emit
// that kept the input record's key or headers (nil in the plugin) has the
// input's in the result, which means the same.
func (c *Client) Process(ctx context.Context, batch []sdk.Record) ([]sdk.Result, error) {
	resp, err := c.proc.Process(ctx, &pluginpb.ProcessRequest{Records: recordsToWire(batch)})
	if err != nil {
		return nil, callError("process", err)
	}
	if len(resp.Results) != len(batch) {
		return nil, fmt.Errorf("process: plugin returned %d results for %d records", len(resp.Results), len(batch))
	}
	return resultsFromWire(resp.Results, batch), nil
}

// Error is a failed call, with the gRPC status code the plugin or the
// connection gave.
type Error struct {
	// Op is the call: "info", "configure" or "process".
	Op string
	// Code is the gRPC status code: InvalidArgument for a bad
	// configuration, Unavailable for a broken connection, Unknown for an
	// error the Processor returned, sdk.CodeUnavailable for one wrapping
	// sdk.ErrUnavailable.
	Code codes.Code
	// Message is the status message, the plugin's own words.
	Message string
	err     error
}

// Error implements error.
func (e *Error) Error() string { return e.Op + ": " + e.Message }

// Unwrap returns context.Canceled, context.DeadlineExceeded or
// sdk.ErrUnavailable for those codes, so errors.Is sees them.
func (e *Error) Unwrap() error { return e.err }

func callError(op string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", op, err)
	}
	e := &Error{Op: op, Code: st.Code(), Message: st.Message()}
	switch st.Code() {
	case codes.Canceled:
		e.err = context.Canceled
	case codes.DeadlineExceeded:
		e.err = context.DeadlineExceeded
	case sdk.CodeUnavailable:
		e.err = sdk.ErrUnavailable
	}
	return e
}

func recordsToWire(batch []sdk.Record) []*pluginpb.Record {
	out := make([]*pluginpb.Record, len(batch))
	ws := make([]pluginpb.Record, len(batch))
	nh := 0
	for _, r := range batch {
		nh += len(r.Headers)
	}
	hs := make([]pluginpb.Header, nh)
	hp := make([]*pluginpb.Header, nh)
	for i, r := range batch {
		w := &ws[i]
		w.Key, w.Value = r.Key, r.Value
		w.Topic, w.Partition, w.Offset = r.Topic, r.Partition, r.Offset
		if !r.Timestamp.IsZero() {
			w.TimestampUnixNano = r.Timestamp.UnixNano()
		}
		if n := len(r.Headers); n > 0 {
			w.Headers = hp[:n:n]
			hp = hp[n:]
			for k, h := range r.Headers {
				hs[0].Key, hs[0].Value = h.Key, h.Value
				w.Headers[k] = &hs[0]
				hs = hs[1:]
			}
		}
		out[i] = w
	}
	return out
}

// resultsFromWire decodes the results for batch. An emit that keeps the
// input's key, value or headers gets the input record's: the same record
// the engine would produce from a nil Key or Headers.
func resultsFromWire(rs []*pluginpb.Result, batch []sdk.Record) []sdk.Result {
	out := make([]sdk.Result, len(rs))
	n := 0
	for _, r := range rs {
		n += len(r.Emits)
	}
	emits := make([]sdk.Emit, n)
	for i, r := range rs {
		out[i].DLQ = r.Dlq
		if len(r.Emits) == 0 {
			continue
		}
		mine := emits[:len(r.Emits):len(r.Emits)]
		emits = emits[len(r.Emits):]
		for k, e := range r.Emits {
			mine[k] = sdk.Emit{Output: e.Output, Key: e.Key, Value: e.Value, Headers: batch[i].Headers}
			if e.Key == nil {
				mine[k].Key = batch[i].Key
			}
			if e.ValueIsInput {
				mine[k].Value = batch[i].Value
			}
			if e.HeadersSet {
				mine[k].Headers = headersFromWire(e.Headers)
			}
		}
		out[i].Emits = mine
	}
	return out
}

func headersFromWire(hs []*pluginpb.Header) []sdk.Header {
	out := make([]sdk.Header, len(hs))
	for i, h := range hs {
		out[i] = sdk.Header{Key: h.Key, Value: h.Value}
	}
	return out
}
