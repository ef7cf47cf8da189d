package expr

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"unicode/utf8"
)

// rotatedRec holds testRec's values under other keys, so that fuzzed
// expressions meet unexpected types.
func rotatedRec() map[string]any {
	rec := testRec()
	keys := make([]string, 0, len(rec))
	for k := range rec {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(map[string]any, len(rec))
	for i, k := range keys {
		out[k] = rec[keys[(i+1)%len(keys)]]
	}
	out["customer"] = map[string]any{"email": 5, "tier": nil, "address": "x"}
	return out
}

func checkFuzzErr(t *testing.T, what, src string, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s(%q): got error %T %v, want *Error", what, src, err, err)
	}
	if e.Offset < 0 || e.Offset > len(src) {
		t.Fatalf("%s(%q): got offset %d, want within [0, %d]", what, src, e.Offset, len(src))
	}
	if want := utf8.RuneCountInString(src[:e.Offset]) + 1; e.Column != want {
		t.Fatalf("%s(%q): got column %d for offset %d, want %d", what, src, e.Column, e.Offset, want)
	}
	if e.Msg == "" {
		t.Fatalf("%s(%q): got empty message", what, src)
	}
}

// outcome renders an evaluation result for comparison.
func outcome(v any, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprintf("%T %#v", v, v)
}

func FuzzCompile(f *testing.F) {
	for _, tc := range evalCases {
		f.Add(tc.src)
	}
	for _, cases := range [][]errCase{compileErrCases, envErrCases, runtimeErrCases} {
		for _, tc := range cases {
			f.Add(tc.src)
		}
	}
	f.Add(`amount_minor > 0 && currency in ["EUR", "USD"] && customer.tier != "test" && !endsWith(customer.email, "@internal.example")`)
	f.Add(`has(customer.address.country) && lower(customer.address.country) in ["de", "fr"]`)
	f.Add(`(price * 100 + amount_int) / 3 % 2 == 1 || created_at >= settled_at`)

	recs := []map[string]any{testRec(), rotatedRec(), nil, {}}
	f.Fuzz(func(t *testing.T, src string) {
		for _, env := range []Env{nil, testEnv} {
			noFast = false
			p, err := Compile(src, env)
			if err != nil {
				if p != nil {
					t.Fatalf("Compile(%q): got program and error %v", src, err)
				}
				checkFuzzErr(t, "Compile", src, err)
				if _, errB := CompileBool(src, env); errB == nil || errB.Error() != err.Error() {
					t.Fatalf("CompileBool(%q): got %v, want %v", src, errB, err)
				}
				continue
			}
			if p.String() != src {
				t.Fatalf("String(): got %q, want %q", p.String(), src)
			}
			pb, errB := CompileBool(src, env)
			if wantOK := p.Type() == Bool || p.Type() == Any; (errB == nil) != wantOK {
				t.Fatalf("CompileBool(%q) with type %v: got error %v", src, p.Type(), errB)
			}
			if errB != nil {
				checkFuzzErr(t, "CompileBool", src, errB)
			}
			noFast = true
			slow, err := Compile(src, env)
			noFast = false
			if err != nil {
				t.Fatalf("Compile(%q) without fast paths: got error %v", src, err)
			}
			for _, rec := range recs {
				v, err := p.Eval(rec)
				if err != nil {
					checkFuzzErr(t, "Eval", src, err)
				}
				b, errB := p.EvalBool(rec)
				if errB != nil {
					checkFuzzErr(t, "EvalBool", src, errB)
					if b {
						t.Fatalf("EvalBool(%q): got true with error", src)
					}
				} else if err == nil && v != b {
					t.Fatalf("EvalBool(%q): got %v, Eval got %#v", src, b, v)
				}
				if pb != nil {
					if b2, err2 := pb.EvalBool(rec); b2 != b || outcome(nil, err2) != outcome(nil, errB) {
						t.Fatalf("CompileBool(%q).EvalBool: got %v, %v, want %v, %v", src, b2, err2, b, errB)
					}
				}
				sv, serr := slow.Eval(rec)
				if got, want := outcome(v, err), outcome(sv, serr); got != want {
					t.Fatalf("Eval(%q): fast path got %s, generic got %s", src, got, want)
				}
				sb, serrB := slow.EvalBool(rec)
				if got, want := outcome(b, errB), outcome(sb, serrB); got != want {
					t.Fatalf("EvalBool(%q): fast path got %s, generic got %s", src, got, want)
				}
			}
		}
	})
}
