// Package sdktest lets plugin authors unit-test a Processor through the
// real plugin path, in-process: the SDK's gRPC server and the engine's
// client over go-plugin's test connection (plugin.TestPluginGRPCConn), with
// records encoded and decoded by the shared Avro schemas just as they are
// in the engine.
//
//	h := sdktest.Start(t, tagger.New, sdk.Config{
//		Settings:   map[string]any{"threshold": 100000},
//		SchemasDir: "../../schemas", Schema: "billing.Transaction",
//	})
//	results, err := h.Process(t.Context(), sdktest.Records(t, "../../schemas", "Transaction", tx1, tx2))
package sdktest

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/billing-engine/billing/engine/avro"
	"github.com/billing-engine/billing/engine/internal/pluginrpc"
	"github.com/billing-engine/billing/engine/sdk"
)

// Harness is a Processor served over gRPC in the test's process. It is an
// sdk.Processor and sdk.Closer, safe for concurrent use; Start and New
// close it when the test ends.
type Harness struct {
	t      testing.TB
	plugin *sdk.Plugin
	client *plugin.GRPCClient
	server *plugin.GRPCServer
	rpc    *pluginrpc.Client
}

// harnessPlugin joins the SDK's serving half to the engine's client half,
// since go-plugin's test connection takes one plugin set for both sides.
type harnessPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	server *sdk.Plugin
}

func (p harnessPlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	return p.server.GRPCServer(b, s)
}

func (p harnessPlugin) GRPCClient(ctx context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pluginrpc.ClientPlugin{}.GRPCClient(ctx, b, c)
}

// New serves factory with info and returns the Harness, not yet
// configured: call Configure. Config.Logger records of the processor go to
// t.Log.
func New(t testing.TB, factory sdk.Factory, info sdk.Info) *Harness {
	t.Helper()
	h := &Harness{t: t, plugin: sdk.NewPlugin(factory, info, testLogger(t))}
	h.client, h.server = plugin.TestPluginGRPCConn(t, false, plugin.PluginSet{sdk.PluginName: harnessPlugin{server: h.plugin}})
	raw, err := h.client.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatalf("sdktest: dispense: %v", err)
	}
	h.rpc = raw.(*pluginrpc.Client)
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("sdktest: close: %v", err)
		}
	})
	return h
}

// Start is New followed by Configure with cfg; it fails the test if
// Configure fails.
func Start(t testing.TB, factory sdk.Factory, cfg sdk.Config) *Harness {
	t.Helper()
	h := New(t, factory, sdk.Info{Name: cfg.Name})
	if err := h.Configure(context.Background(), cfg); err != nil {
		t.Fatalf("sdktest: %v", err)
	}
	return h
}

// Info calls the plugin's Info.
func (h *Harness) Info(ctx context.Context) (sdk.Info, error) { return h.rpc.Info(ctx) }

// Configure sends cfg as the engine does: Settings as JSON, so a test sees
// numbers as the plugin will (integers as int, others as float64). A bad
// configuration's error carries the factory's message.
func (h *Harness) Configure(ctx context.Context, cfg sdk.Config) error {
	return h.rpc.Configure(ctx, cfg)
}

// Process sends batch through gRPC. The plugin decodes each Value with the
// configured schema, as in the engine (unless the Processor is an
// sdk.DataUser that does not use Data); Emit.Data is nil in the results.
func (h *Harness) Process(ctx context.Context, batch []sdk.Record) ([]sdk.Result, error) {
	return h.rpc.Process(ctx, batch)
}

// Close closes the connection and the configured Processor. It is safe to
// call more than once.
func (h *Harness) Close() error {
	if h.client == nil {
		return nil
	}
	// Stop the server first: closing the client would otherwise ask it to
	// stop from its own goroutine, racing with this one. The client then
	// reports the stopped server, which does not matter here.
	h.server.Stop()
	_ = h.client.Close()
	h.client = nil
	return h.plugin.Close()
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Records encodes each value with the current version of the schema named
// schema in schemasDir (Avro single-object encoding, as on the topics) and
// returns them as records keyed "k0", "k1", ... on topic "test".
func Records(t testing.TB, schemasDir, schema string, values ...map[string]any) []sdk.Record {
	t.Helper()
	reg, err := avro.LoadDir(schemasDir)
	if err != nil {
		t.Fatalf("sdktest: %v", err)
	}
	s, err := reg.Schema(schema)
	if err != nil {
		t.Fatalf("sdktest: %v", err)
	}
	out := make([]sdk.Record, len(values))
	for i, v := range values {
		b, err := s.Encode(v)
		if err != nil {
			t.Fatalf("sdktest: value %d: %v", i, err)
		}
		out[i] = sdk.Record{Key: fmt.Appendf(nil, "k%d", i), Value: b, Topic: "test", Offset: int64(i)}
	}
	return out
}
