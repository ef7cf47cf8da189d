// Package pluginrpc is the engine's half of the plugin protocol
// (engine/sdk/pluginpb): a client that turns sdk batches into gRPC calls and
// back. Package pluginhost runs plugin processes with it; package
// engine/sdk/sdktest connects it to an in-process sdk.Plugin.
package pluginrpc

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

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
// input's in the result, which means the same. The keys and values of the
// results that the plugin sent back share one buffer of the response.
func (c *Client) Process(ctx context.Context, batch []sdk.Record) ([]sdk.Result, error) {
	w := writers.Get().(*pluginpb.Writer)
	req := &pluginpb.ProcessRequest{Batch: encodeBatch(w, batch)}
	resp, err := c.proc.Process(ctx, req)
	// gRPC has marshalled the request into its own buffer by now.
	req.Batch = nil
	putWriter(w)
	if err != nil {
		return nil, callError("process", err)
	}
	results, err := resultsFromWire(resp.Results, batch)
	if err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	return results, nil
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

// writers holds the Writers, and their buffers, of the requests in
// flight and recently sent.
var writers = sync.Pool{New: func() any { return new(pluginpb.Writer) }}

// maxPooledBytes is the largest request buffer kept for reuse: an
// unusual, huge batch does not stay in memory.
const maxPooledBytes = 16 << 20

func putWriter(w *pluginpb.Writer) {
	if cap(w.Bytes()) > maxPooledBytes {
		return
	}
	w.Reset(w.Bytes())
	writers.Put(w)
}

// encodeBatch packs batch into w's buffer and returns it. Data is not
// sent: the plugin decodes Value itself.
func encodeBatch(w *pluginpb.Writer, batch []sdk.Record) []byte {
	size := 4
	for i := range batch {
		r := &batch[i]
		size += 24 + len(r.Key) + len(r.Value)
		for _, h := range r.Headers {
			size += 4 + len(h.Value)
		}
	}
	w.Reset(slices.Grow(w.Bytes()[:0], size))
	w.Count(len(batch))
	for i := range batch {
		r := &batch[i]
		p := pluginpb.PackedRecord{
			Key: r.Key, Value: r.Value,
			Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
			Headers: -1,
		}
		if !r.Timestamp.IsZero() {
			p.TimestampUnixNano = r.Timestamp.UnixNano()
		}
		if r.Headers != nil {
			p.Headers = len(r.Headers)
		}
		w.Record(&p)
		for _, h := range r.Headers {
			w.Header(h.Key, h.Value)
		}
	}
	return w.Bytes()
}

// resultsFromWire reads the packed results for batch. An emit that keeps
// the input's key, value or headers gets the input record's: the same
// record the engine would produce from a nil Key or Headers.
func resultsFromWire(msg []byte, batch []sdk.Record) ([]sdk.Result, error) {
	var rd pluginpb.Reader
	rd.Reset(msg)
	n := rd.ResultCount()
	if err := rd.Err(); err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	if n != len(batch) {
		return nil, fmt.Errorf("plugin returned %d results for %d records", n, len(batch))
	}
	out := make([]sdk.Result, n)
	var slab []sdk.Emit
	for i := range out {
		var p pluginpb.PackedResult
		if !rd.Result(&p) {
			break
		}
		out[i].DLQ = p.DLQ
		if p.Emits == 0 {
			continue
		}
		if len(slab) < p.Emits {
			// Most stages emit alike for every record: size the slab
			// for the rest of the batch.
			slab = make([]sdk.Emit, max(p.Emits, min(p.Emits*(n-i), emitSlab)))
		}
		mine := slab[:p.Emits:p.Emits]
		slab = slab[p.Emits:]
		for k := range mine {
			if !emitFromWire(&rd, &mine[k], &batch[i]) {
				break
			}
		}
		out[i].Emits = mine
	}
	if err := rd.Finish(); err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	return out, nil
}

// emitSlab is how many emits resultsFromWire allocates at once, at most.
const emitSlab = 4096

func emitFromWire(rd *pluginpb.Reader, e *sdk.Emit, in *sdk.Record) bool {
	var p pluginpb.PackedEmit
	if !rd.Emit(&p) {
		return false
	}
	*e = sdk.Emit{Output: p.Output, Key: p.Key, Value: p.Value, Headers: in.Headers}
	if p.Key == nil {
		e.Key = in.Key
	}
	if p.ValueIsInput {
		// The input's value, unchanged: its decoded form too, so a record
		// passed on to the next stage is not decoded again.
		e.Value, e.Data = in.Value, in.Data
	}
	if p.Headers >= 0 {
		e.Headers = make([]sdk.Header, p.Headers)
		for j := range e.Headers {
			e.Headers[j].Key, e.Headers[j].Value = rd.Header()
		}
	}
	return rd.Err() == nil
}
