package router

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/billing-engine/billing/engine/sdk"
)

// seedRoutes is the seed's four-way split.
func seedRoutes() map[string]any {
	var routes []any
	for _, s := range []string{"APPROVED", "DECLINED", "REFUNDED", "BILLED"} {
		routes = append(routes, map[string]any{"output": strings.ToLower(s), "when": `status == "` + s + `"`})
	}
	return map[string]any{"routes": routes}
}

func TestRouterSeedBranches(t *testing.T) {
	r, err := Compile(seedRoutes())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		data    map[string]any
		wantOut string
		wantDLQ string
	}{
		{"approved", map[string]any{"status": "APPROVED"}, "approved", ""},
		{"declined", map[string]any{"status": "DECLINED"}, "declined", ""},
		{"refunded", map[string]any{"status": "REFUNDED"}, "refunded", ""},
		{"billed", map[string]any{"status": "BILLED"}, "billed", ""},
		{"unknown status", map[string]any{"status": "PENDING"}, "", "branch: no route matched"},
		{"status missing (null never equals a string)", map[string]any{"amount_minor": int64(5)}, "", "branch: no route matched"},
		{"status wrong type", map[string]any{"status": int64(3)}, "", "branch approved: "},
		{"not decoded", nil, "", "branch: record not decoded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := sdk.Record{Key: []byte("k"), Value: []byte("v"), Data: tt.data}
			res, err := r.Process(context.Background(), []sdk.Record{rec})
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 1 {
				t.Fatalf("got %d results, want 1", len(res))
			}
			got := res[0]
			if tt.wantDLQ != "" {
				if !strings.HasPrefix(got.DLQ, tt.wantDLQ) || len(got.Emits) != 0 {
					t.Errorf("got DLQ %q with %d emits, want DLQ starting %q and none", got.DLQ, len(got.Emits), tt.wantDLQ)
				}
				return
			}
			if got.DLQ != "" || len(got.Emits) != 1 || got.Emits[0].Output != tt.wantOut {
				t.Fatalf("got %+v, want one emit to %q", got, tt.wantOut)
			}
			if string(got.Emits[0].Value) != "v" || string(got.Emits[0].Key) != "k" {
				t.Errorf("emit changed the record: key %q value %q", got.Emits[0].Key, got.Emits[0].Value)
			}
		})
	}
}

func TestRouterDefaultAndOrder(t *testing.T) {
	r, err := Compile(map[string]any{
		"routes": []any{
			map[string]any{"output": "big", "when": "amount_minor >= 100000"},
			map[string]any{"output": "eur", "when": `currency == "EUR"`},
		},
		"default": "rest",
	})
	if err != nil {
		t.Fatal(err)
	}
	batch := []sdk.Record{
		{Data: map[string]any{"amount_minor": int64(200000), "currency": "EUR"}},
		{Data: map[string]any{"amount_minor": int64(5), "currency": "EUR"}},
		{Data: map[string]any{"amount_minor": int64(5), "currency": "USD"}},
	}
	res, err := r.Process(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"big", "eur", "rest"} {
		if got := res[i].Emits[0].Output; got != want {
			t.Errorf("record %d: got output %q, want %q (first match wins)", i, got, want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
		want     string
	}{
		{"empty", map[string]any{}, "no routes and no default"},
		{"bad expression", map[string]any{"routes": []any{map[string]any{"output": "a", "when": "status =="}}}, "routes[0]"},
		{"missing output", map[string]any{"routes": []any{map[string]any{"when": "true"}}}, "output and when are required"},
		{"route not a map", map[string]any{"routes": []any{"x"}}, "want a map"},
		{"default not a string", map[string]any{"default": 3}, "default: want a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.settings)
			if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an ErrConfig containing %q", err, tt.want)
			}
		})
	}
}
