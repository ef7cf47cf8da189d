package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/sdk"
	"github.com/billing-engine/billing/engine/sdk/sdktest"
)

var schemas = filepath.Join("..", "..", "..", "schemas")

func transaction(id string, amount int64) map[string]any {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	return map[string]any{
		"transaction_id": id, "client_id": "c-1", "amount_minor": amount, "currency": "EUR",
		"status": "APPROVED", "description": "", "created_at": now, "updated_at": now,
	}
}

// TestTagger runs the processor through the real plugin path with sdktest.
func TestTagger(t *testing.T) {
	h := sdktest.Start(t, New, sdk.Config{
		Name: "tagger", Settings: map[string]any{"threshold": 100_000},
		SchemasDir: schemas, Schema: "Transaction",
	})
	batch := sdktest.Records(t, schemas, "Transaction", transaction("t1", 250_000), transaction("t2", 1_999))
	results, err := h.Process(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct{ output, band string }{{"high", "high"}, {"next", "normal"}} {
		e := results[i].Emits[0]
		if e.Output != want.output || len(e.Headers) != 1 || string(e.Headers[0].Value) != want.band {
			t.Errorf("record %d: got output %q headers %v, want %q with amount-band=%s", i, e.Output, e.Headers, want.output, want.band)
		}
	}
}

func TestTaggerConfig(t *testing.T) {
	h := sdktest.New(t, New, sdk.Info{})
	for _, tc := range []struct {
		settings map[string]any
		want     string
	}{
		{map[string]any{}, "threshold: required"},
		{map[string]any{"threshold": -1}, "threshold: want a positive integer"},
		{map[string]any{"threshold": 1.5}, "threshold: want a positive integer"},
		{map[string]any{"threshold": 1, "colour": "red"}, "colour: unknown setting"},
	} {
		err := h.Configure(t.Context(), sdk.Config{Settings: tc.settings})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("settings %v: got %v, want %q", tc.settings, err, tc.want)
		}
	}
}

// TestDocShowsThisCode keeps the README's "Writing a plugin" in step with main.go.
func TestDocShowsThisCode(t *testing.T) {
	code, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```go\n"+string(code)+"```") {
		t.Error("README.md does not show examples/plugins/tagger/main.go as it is: copy it into the doc")
	}
}
