package expr

import (
	"testing"
	"time"
)

var benchRec = map[string]any{
	"status":       "APPROVED",
	"amount_minor": int64(12999),
	"currency":     "USD",
	"country":      "DE",
	"created_at":   time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC),
	"customer": map[string]any{
		"email": "jane@example.com",
		"tier":  "gold",
	},
}

var benchEnv = MapEnv{
	"status":         String,
	"amount_minor":   Int,
	"currency":       String,
	"country":        String,
	"created_at":     Time,
	"customer":       Map,
	"customer.email": String,
	"customer.tier":  String,
}

func benchBool(b *testing.B, src string, env Env) {
	p, err := CompileBool(src, env)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := p.EvalBool(benchRec); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.EvalBool(benchRec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvalBoolEq is the most common filter: field == "literal".
func BenchmarkEvalBoolEq(b *testing.B) { benchBool(b, `status == "APPROVED"`, benchEnv) }

// BenchmarkEvalBoolGt is field > integer literal.
func BenchmarkEvalBoolGt(b *testing.B) { benchBool(b, `amount_minor > 123`, benchEnv) }

// BenchmarkEvalBoolComplex combines logic, membership, nested fields and a
// function call.
func BenchmarkEvalBoolComplex(b *testing.B) {
	benchBool(b, `amount_minor > 0 && currency in ["EUR", "USD", "GBP"] && customer.tier != "test" && !endsWith(customer.email, "@internal.example")`, benchEnv)
}

// BenchmarkEvalBoolComplexNoEnv is the same expression compiled without a
// schema, so every type is checked at run time.
func BenchmarkEvalBoolComplexNoEnv(b *testing.B) {
	benchBool(b, `amount_minor > 0 && currency in ["EUR", "USD", "GBP"] && customer.tier != "test" && !endsWith(customer.email, "@internal.example")`, nil)
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CompileBool(`amount_minor > 0 && currency in ["EUR", "USD", "GBP"] && customer.tier != "test"`, benchEnv); err != nil {
			b.Fatal(err)
		}
	}
}
