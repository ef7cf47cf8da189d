package expr

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	t1   = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	t2   = time.Date(2024, 3, 2, 8, 30, 0, 0, time.UTC)
	cest = time.FixedZone("CEST", 2*60*60)
)

// testRec returns a fresh record holding every supported Go type and a
// few unsupported ones.
func testRec() map[string]any {
	return map[string]any{
		"status":           "APPROVED",
		"currency":         "EUR",
		"empty":            "",
		"amount_minor":     int64(12999),
		"amount_int":       7,
		"i32":              int32(-5),
		"i16":              int16(300),
		"i8":               int8(-8),
		"u8":               uint8(200),
		"u16":              uint16(60000),
		"u32":              uint32(4000000000),
		"uint":             uint(42),
		"u64ok":            uint64(42),
		"u64":              uint64(1 << 63),
		"big":              int64(math.MaxInt64),
		"small":            int64(math.MinInt64),
		"price":            19.99,
		"f32":              float32(0.5),
		"nan":              math.NaN(),
		"active":           true,
		"inactive":         false,
		"note":             nil,
		"created_at":       t1,
		"settled_at":       t2,
		"created_at_local": t1.In(cest),
		"tags":             []any{"vip", "eu", nil},
		"codes":            []string{"A", "B"},
		"nums":             []int64{1, 2, 3},
		"ints":             []int{4},
		"floats":           []float64{1.5},
		"badlist":          []any{struct{}{}},
		"weird":            struct{}{},
		"bytes":            []byte("x"),
		"prénom":           "Zoë",
		"customer": map[string]any{
			"email":   "Jane@Example.com",
			"tier":    "gold",
			"nothing": nil,
			"address": map[string]any{"country": "DE"},
		},
	}
}

// testEnv describes testRec.
var testEnv = MapEnv{
	"status": String, "currency": String, "empty": String,
	"amount_minor": Int, "amount_int": Int, "i32": Int, "i16": Int, "i8": Int,
	"u8": Int, "u16": Int, "u32": Int, "uint": Int, "u64ok": Int, "u64": Any,
	"big": Int, "small": Int,
	"price": Float, "f32": Float, "nan": Float,
	"active": Bool, "inactive": Bool, "note": Any,
	"created_at": Time, "settled_at": Time, "created_at_local": Time,
	"tags": List, "codes": List, "nums": List, "ints": List, "floats": List, "badlist": List,
	"weird": Any, "bytes": Any, "prénom": String,
	"customer": Map, "customer.email": String, "customer.tier": String,
	"customer.nothing": String, "customer.address": Map, "customer.address.country": String,
	"missing": Any, "missing.x": Any, "customer.missing": Map, "customer.missing.deep": Any,
	"customer.nothing.x": Any, "status.x": Any,
}

type evalCase struct {
	src  string
	want any
}

var evalCases = []evalCase{
	// literals
	{`1`, int64(1)},
	{`-9223372036854775808`, int64(math.MinInt64)},
	{`9223372036854775807`, int64(math.MaxInt64)},
	{`1.5`, 1.5},
	{`1e3`, 1000.0},
	{`1.5e-1`, 0.15},
	{`2E+2`, 200.0},
	{`"double"`, "double"},
	{`'single'`, "single"},
	{`"it's"`, "it's"},
	{`'say "hi"'`, `say "hi"`},
	{`"a\"b\'c\\d\/e"`, `a"b'c\d/e`},
	{`"\n\r\t\b\f\v\a\0"`, "\n\r\t\b\f\v\a\x00"},
	{`"\x41\u00e9\U0001F600"`, "Aé😀"},
	{"\"multi\nline\"", "multi\nline"},
	{`""`, ""},
	{`true`, true},
	{`false`, false},
	{`null`, nil},
	{`[]`, []any{}},
	{`[1, "a", null, true, 2.5,]`, []any{int64(1), "a", nil, true, 2.5}},
	{`[status, 1 + 1]`, []any{"APPROVED", int64(2)}},

	// field references and normalisation
	{`status`, "APPROVED"},
	{`amount_int`, int64(7)},
	{`i32`, int64(-5)},
	{`i16`, int64(300)},
	{`i8`, int64(-8)},
	{`u8`, int64(200)},
	{`u16`, int64(60000)},
	{`u32`, int64(4000000000)},
	{`uint`, int64(42)},
	{`u64ok`, int64(42)},
	{`f32`, 0.5},
	{`created_at`, t1},
	{`note`, nil},
	{`missing`, nil},
	{`customer.address.country`, "DE"},
	{`customer.missing.deep`, nil},
	{`customer.nothing.x`, nil},
	{`prénom == "Zoë"`, true},
	{`customer.address.country in ["DE"]`, true},
	{`codes`, []string{"A", "B"}},

	// equality
	{`status == "APPROVED"`, true},
	{`status == 'APPROVED'`, true},
	{`"APPROVED" == status`, true},
	{`status != "APPROVED"`, false},
	{`status == "approved"`, false},
	{`status == currency`, false},
	{`amount_minor == 12999`, true},
	{`12999 == amount_minor`, true},
	{`amount_minor != 12999`, false},
	{`active == true`, true},
	{`active != true`, false},
	{`inactive == false`, true},
	{`true == active`, true},
	{`active == inactive`, false},
	{`created_at == created_at_local`, true},
	{`created_at != settled_at`, true},

	// int/float mixing
	{`1 == 1.0`, true},
	{`1.0 == 1`, true},
	{`amount_int == 7.0`, true},
	{`amount_int < 7.5`, true},
	{`amount_int > 6.9`, true},
	{`7.5 > amount_int`, true},
	{`amount_int >= 7.0`, true},
	{`price > 19`, true},
	{`price < 20`, true},
	{`19 < price`, true},
	{`f32 == 0.5`, true},
	{`u8 == 200`, true},
	{`i32 < 0`, true},
	{`9007199254740993 == 9007199254740992.0`, false},
	{`9007199254740993 > 9007199254740992.0`, true},
	{`9007199254740992 == 9007199254740992.0`, true},
	{`big < 9.3e18`, true},
	{`big == 9223372036854775807.0`, false},
	{`big < 9223372036854775807.0`, true},
	{`small == -9223372036854775808.0`, true},
	{`small > -1e300`, true},
	{`nan == nan`, false},
	{`nan != nan`, true},
	{`nan < 1`, false},
	{`nan >= 1`, false},
	{`nan == 1.0`, false},
	{`nan != 1.0`, true},
	{`amount_int == nan`, false},
	{`amount_int < nan`, false},
	{`amount_int != nan`, true},

	// ordering
	{`amount_minor > 123`, true},
	{`amount_minor > 12999`, false},
	{`amount_minor >= 12999`, true},
	{`amount_minor < 12999`, false},
	{`amount_minor <= 12999`, true},
	{`123 < amount_minor`, true},
	{`123 >= amount_minor`, false},
	{`amount_int > 6`, true},
	{`i32 <= -5`, true},
	{`status < "B"`, true},
	{`status > "APP"`, true},
	{`"a" < "b"`, true},
	{`"b" <= "a"`, false},
	{`"" < "a"`, true},
	{`created_at < settled_at`, true},
	{`created_at > settled_at`, false},
	{`created_at <= created_at_local`, true},
	{`created_at >= created_at_local`, true},
	{`settled_at >= created_at`, true},

	// arithmetic
	{`1 + 2`, int64(3)},
	{`1 + 0.5`, 1.5},
	{`0.5 + 1`, 1.5},
	{`5 - 7`, int64(-2)},
	{`2 * 3`, int64(6)},
	{`2 * 1.5`, 3.0},
	{`7 / 2`, int64(3)},
	{`-7 / 2`, int64(-3)},
	{`7.0 / 2`, 3.5},
	{`7 / 2.0`, 3.5},
	{`7 % 3`, int64(1)},
	{`-7 % 3`, int64(-1)},
	{`7 % -3`, int64(1)},
	{`-9223372036854775808 % -1`, int64(0)},
	{`0 * -9223372036854775808`, int64(0)},
	{`-3`, int64(-3)},
	{`- 3`, int64(-3)},
	{`--3`, int64(3)},
	{`-(3)`, int64(-3)},
	{`-1.5`, -1.5},
	{`-amount_int`, int64(-7)},
	{`-price`, -19.99},
	{`amount_minor / 100`, int64(129)},
	{`amount_minor / 100.0`, 129.99},
	{`amount_minor % 100`, int64(99)},
	{`amount_int * 2 + 1`, int64(15)},
	{`"a" + "b"`, "ab"},
	{`status + "!"`, "APPROVED!"},
	{`9223372036854775806 + 1`, int64(math.MaxInt64)},
	{`-9223372036854775807 - 1`, int64(math.MinInt64)},

	// precedence and associativity
	{`2 * 3 + 4`, int64(10)},
	{`2 + 3 * 4`, int64(14)},
	{`2 * (3 + 4)`, int64(14)},
	{`10 - 2 - 3`, int64(5)},
	{`10 - (2 - 3)`, int64(11)},
	{`100 / 10 / 5`, int64(2)},
	{`2 * 3 % 4`, int64(2)},
	{`-2 * -3`, int64(6)},
	{`-2 - -3`, int64(1)},
	{`1 + 2 == 3`, true},
	{`1 + 2 in [3]`, true},
	{`2 * 3 in [6]`, true},
	{`1 in [1] == true`, true},
	{`1 in [2] == false`, true},
	{`true || false && false`, true},
	{`(true || false) && false`, false},
	{`false && true || true`, true},
	{`!true || true`, true},
	{`!false && false`, false},
	{`!1 == 2`, true},
	{`!status == "X"`, true},
	{`!!true`, true},
	{`! has(note)`, true},
	{`!(amount_minor > 0) || status == "APPROVED"`, true},
	{`amount_minor > 0 && currency in ["EUR", "USD"]`, true},
	{`(amount_minor > 0) == (1 < 2)`, true},

	// logic
	{`true && true`, true},
	{`true && false`, false},
	{`false && true`, false},
	{`false || false`, false},
	{`false || true`, true},
	{`!true`, false},
	{`!false`, true},
	{`active && !inactive`, true},
	{`active || note`, true},               // short-circuit: note is never evaluated
	{`inactive && note`, false},            // short-circuit
	{`true || note > 1`, true},             // short-circuit avoids the null error
	{`false && note > 1`, false},           // short-circuit avoids the null error
	{`has(note) && note > 1`, false},       // the documented guard
	{`false && weird == 1`, false},         // unsupported type never read
	{`true || amount_minor / 0 > 1`, true}, // division never evaluated

	// membership
	{`currency in ["EUR", "USD"]`, true},
	{`currency in ["USD", "GBP"]`, false},
	{`currency not in ["EUR"]`, false},
	{`currency not in ["USD"]`, true},
	{`"EUR" in [currency]`, true},
	{`status in [currency, "APPROVED"]`, true},
	{`status in [lower("approved"), upper("approved")]`, true},
	{`status not in [lower("approved"), currency]`, true},
	{`amount_int in [1, 7]`, true},
	{`amount_int in [7.0]`, true},
	{`amount_int not in [1, 2]`, true},
	{`price in [19.99]`, true},
	{`active in [false, true]`, true},
	{`created_at in [settled_at, created_at_local]`, true},
	{`1 in []`, false},
	{`1 not in []`, true},
	{`"vip" in tags`, true},
	{`"x" in tags`, false},
	{`null in tags`, true},
	{`note in tags`, true},
	{`note in ["a"]`, false},
	{`note in ["a", null]`, true},
	{`missing not in ["a"]`, true},
	{`"A" in codes`, true},
	{`"C" in codes`, false},
	{`2 in nums`, true},
	{`2.0 in nums`, true},
	{`5 in nums`, false},
	{`4 in ints`, true},
	{`1.5 in floats`, true},
	{`1 in floats`, false},

	// null semantics
	{`note == null`, true},
	{`note != null`, false},
	{`null == note`, true},
	{`missing == null`, true},
	{`missing.x == null`, true},
	{`null == null`, true},
	{`null != null`, false},
	{`status == null`, false},
	{`status != null`, true},
	{`null != 1`, true},
	{`note == 1`, false},
	{`note == "x"`, false},
	{`note != "x"`, true},
	{`tags == null`, false},
	{`customer == null`, false},
	{`created_at == null`, false},

	// functions
	{`has(status)`, true},
	{`has(note)`, false},
	{`has(missing)`, false},
	{`has(customer.email)`, true},
	{`has(customer.nothing)`, false},
	{`has(customer.missing.deep)`, false},
	{`has(status.x)`, false},
	{`has(customer)`, true},
	{`lower(customer.email)`, "jane@example.com"},
	{`upper(customer.email)`, "JANE@EXAMPLE.COM"},
	{`lower("ÉTÉ")`, "été"},
	{`upper(status) == status`, true},
	{`len(status)`, int64(8)},
	{`len("héllo")`, int64(5)},
	{`len("")`, int64(0)},
	{`len(tags)`, int64(3)},
	{`len(codes)`, int64(2)},
	{`len(nums)`, int64(3)},
	{`len(customer)`, int64(4)},
	{`len([1, 2])`, int64(2)},
	{`len([])`, int64(0)},
	{`len(status) > 3`, true},
	{`startsWith(status, "APP")`, true},
	{`startsWith(status, "PRO")`, false},
	{`startsWith(status, "")`, true},
	{`endsWith(status, "VED")`, true},
	{`endsWith(status, "APP")`, false},
	{`contains(customer.email, "@")`, true},
	{`contains(customer.email, "#")`, false},
	{`contains("", "")`, true},
	{`endsWith(lower(customer.email), "@example.com")`, true},
}

func equalResult(got, want any) bool {
	return reflect.DeepEqual(got, want)
}

func evalOne(t *testing.T, src string, env Env) (any, error, bool) {
	t.Helper()
	p, err := Compile(src, env)
	if err != nil {
		return nil, err, false
	}
	got, err := p.Eval(testRec())
	return got, err, true
}

func TestEval(t *testing.T) {
	for _, fast := range []bool{true, false} {
		noFast = !fast
		for _, tc := range evalCases {
			p, err := Compile(tc.src, nil)
			if err != nil {
				t.Errorf("Compile(%q): got error %v, want nil", tc.src, err)
				continue
			}
			got, err := p.Eval(testRec())
			if err != nil {
				t.Errorf("Eval(%q) fast=%v: got error %v, want %#v", tc.src, fast, err, tc.want)
				continue
			}
			if !equalResult(got, tc.want) {
				t.Errorf("Eval(%q) fast=%v: got %#v (%T), want %#v (%T)", tc.src, fast, got, got, tc.want, tc.want)
			}
			if b, ok := tc.want.(bool); ok {
				gotb, err := p.EvalBool(testRec())
				if err != nil || gotb != b {
					t.Errorf("EvalBool(%q) fast=%v: got %v, %v, want %v, nil", tc.src, fast, gotb, err, b)
				}
			}
		}
	}
	noFast = false
}

// TestEvalWithEnv checks that the cases give the same results when
// compiled against a schema (where static types are known).
func TestEvalWithEnv(t *testing.T) {
	for _, tc := range evalCases {
		p, err := Compile(tc.src, testEnv)
		if err != nil {
			t.Errorf("Compile(%q, env): got error %v, want nil", tc.src, err)
			continue
		}
		got, err := p.Eval(testRec())
		if err != nil {
			t.Errorf("Eval(%q) with env: got error %v, want %#v", tc.src, err, tc.want)
			continue
		}
		if !equalResult(got, tc.want) {
			t.Errorf("Eval(%q) with env: got %#v, want %#v", tc.src, got, tc.want)
		}
	}
}

func TestEvalNilRecord(t *testing.T) {
	for _, tc := range []evalCase{
		{`status == "A"`, false},
		{`has(status)`, false},
		{`status == null`, true},
		{`customer.email == null`, true},
		{`has(status) && len(status) == 0 || true`, true},
	} {
		p, err := Compile(tc.src, nil)
		if err != nil {
			t.Fatalf("Compile(%q): got error %v", tc.src, err)
		}
		got, err := p.Eval(nil)
		if err != nil || got != tc.want {
			t.Errorf("Eval(%q, nil): got %v, %v, want %v, nil", tc.src, got, err, tc.want)
		}
	}
}

type errCase struct {
	src    string
	col    int
	msg    string
	offset int // checked when non-zero; otherwise must be col-1 (ASCII)
}

func checkErr(t *testing.T, what string, err error, tc errCase) {
	t.Helper()
	if err == nil {
		t.Errorf("%s(%q): got no error, want column %d %q", what, tc.src, tc.col, tc.msg)
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("%s(%q): got error %T %v, want *Error", what, tc.src, err, err)
		return
	}
	wantOff := tc.col - 1
	if tc.offset != 0 {
		wantOff = tc.offset
	}
	if e.Column != tc.col || e.Msg != tc.msg || e.Offset != wantOff {
		t.Errorf("%s(%q): got offset %d column %d %q, want offset %d column %d %q", what, tc.src, e.Offset, e.Column, e.Msg, wantOff, tc.col, tc.msg)
	}
	want := "expr: column " + itoaTest(tc.col) + ": " + tc.msg
	if err.Error() != want {
		t.Errorf("%s(%q).Error(): got %q, want %q", what, tc.src, err.Error(), want)
	}
}

func itoaTest(n int) string {
	s := ""
	for {
		s = string(rune('0'+n%10)) + s
		n /= 10
		if n == 0 {
			return s
		}
	}
}

// compileErrCases fail to compile with or without an Env.
var compileErrCases = []errCase{
	// syntax
	{``, 1, "unexpected end of expression", 0},
	{`   `, 4, "unexpected end of expression", 0},
	{`status == `, 11, "unexpected end of expression", 0},
	{`status ==`, 10, "unexpected end of expression", 0},
	{`status === "A"`, 10, "unexpected '='", 0},
	{`status = "A"`, 8, "unexpected '='; use '==' for equality", 0},
	{`status <== "A"`, 10, "unexpected '='", 0},
	{`a & b`, 3, "unexpected '&'; use '&&' for logical and", 0},
	{`a | b`, 3, "unexpected '|'; use '||' for logical or", 0},
	{`a # b`, 3, "unexpected character '#'", 0},
	{`a == b c`, 8, "unexpected identifier c", 0},
	{`a b`, 3, "unexpected identifier b", 0},
	{`1 2`, 3, "unexpected number 2", 0},
	{`"a" "b"`, 5, `unexpected string "b"`, 0},
	{`a ==`, 5, "unexpected end of expression", 0},
	{`== a`, 1, "unexpected '=='", 0},
	{`a && || b`, 6, "unexpected '||'", 0},
	{`(a`, 3, "unexpected end of expression; expected ')'", 0},
	{`(a b)`, 4, "unexpected identifier b; expected ')'", 0},
	{`a)`, 2, "unexpected ')'", 0},
	{`[1, 2`, 6, "unexpected end of expression; expected ',' or ']'", 0},
	{`[1 2]`, 4, "unexpected number 2; expected ',' or ']'", 0},
	{`[1,,2]`, 4, "unexpected ','", 0},
	{`lower(a b)`, 9, "unexpected identifier b; expected ',' or ')'", 0},
	{`lower(`, 7, "unexpected end of expression", 0},
	{`a < b < c`, 7, "comparison operators cannot be chained; use parentheses or &&", 0},
	{`a == b != c`, 8, "comparison operators cannot be chained; use parentheses or &&", 0},
	{`a in b in c`, 8, "'in' cannot be chained; use parentheses", 0},
	{`not a`, 1, "unexpected 'not'; use '!' for negation", 0},
	{`a not b`, 7, "unexpected identifier b; expected 'in' after 'not'", 0},
	{`a == !b`, 6, "unexpected '!'", 0},
	{`a.`, 2, "expected field name after '.'", 0},
	{`a..b`, 2, "expected field name after '.'", 0},
	{`.5`, 1, "unexpected character '.'", 0},
	{`null.x == 1`, 5, "unexpected character '.'", 0},
	{`x == true.y`, 10, "unexpected character '.'", 0},
	{`12abc`, 1, `malformed number "12abc"`, 0},
	{`1.`, 1, `malformed number "1."`, 0},
	{`1.2.3`, 1, `malformed number "1.2.3"`, 0},
	{`1e`, 1, `malformed number "1e"`, 0},
	{`x == 9223372036854775808`, 6, "integer literal 9223372036854775808 out of range", 0},
	{`x == -9223372036854775809`, 7, "integer literal -9223372036854775809 out of range", 0},
	{`1e999`, 1, "float literal 1e999 out of range", 0},
	{`status == "abc`, 11, "unterminated string literal", 0},
	{`status == 'abc"`, 11, "unterminated string literal", 0},
	{`"abc\`, 1, "unterminated string literal", 0},
	{`"\q"`, 2, `unknown escape sequence \q`, 0},
	{`x == "ab\é"`, 9, `unknown escape sequence \é`, 0},
	{`"\x4"`, 2, `invalid escape sequence: \x needs 2 hex digits`, 0},
	{`"\u12G4"`, 2, `invalid escape sequence: \u needs 4 hex digits`, 0},
	{`"\uD800"`, 2, `invalid escape sequence: \uD800 is not a valid code point`, 0},
	{`"\U00110000"`, 2, `invalid escape sequence: \U00110000 is not a valid code point`, 0},
	{"a == \xff", 6, "invalid UTF-8 byte 0xff", 0},
	// Column counts characters, Offset counts bytes.
	{`"é" == x y`, 10, "unexpected identifier y", 10},
	{`"日本" == x y`, 11, "unexpected identifier y", 14},
	{strings.Repeat("(", 300) + "1" + strings.Repeat(")", 300), 201, "expression nested too deeply (more than 200 levels)", 0},
	{strings.Repeat("!", 300) + "true", 200, "expression nested too deeply (more than 200 levels)", 0},
	{strings.Repeat("-", 300) + "1", 200, "expression nested too deeply (more than 200 levels)", 0},

	// functions
	{`nosuch(1)`, 1, `unknown function "nosuch"`, 0},
	{`a.b(1)`, 1, `unknown function "a.b"`, 0},
	{`len()`, 1, "len: expected 1 argument, got 0", 0},
	{`x && lower("a", "b") == "a"`, 6, "lower: expected 1 argument, got 2", 0},
	{`startsWith("a")`, 1, "startsWith: expected 2 arguments, got 1", 0},
	{`has("x")`, 5, "has: argument must be a field name", 0},
	{`has(a.b + 1)`, 5, "has: argument must be a field name", 0},
	{`lower(1)`, 7, "lower: argument must be string, got int", 0},
	{`upper(null)`, 7, "upper: argument must be string, got null", 0},
	{`len(1.5)`, 5, "len: argument must be string, list or map, got float", 0},
	{`len(true)`, 5, "len: argument must be string, list or map, got bool", 0},
	{`startsWith("a", 1)`, 17, "startsWith: argument must be string, got int", 0},
	{`contains(1 > 2, "a")`, 10, "contains: argument must be string, got bool", 0},

	// static types of literals
	{`"a" == 1`, 5, "mismatched types string and int for ==", 0},
	{`1 != "a"`, 3, "mismatched types int and string for !=", 0},
	{`true == 1`, 6, "mismatched types bool and int for ==", 0},
	{`"a" < 1`, 5, "mismatched types string and int for <", 0},
	{`true < false`, 6, "operator < not defined on bool", 0},
	{`null > 1`, 6, "operator > not defined on null", 0},
	{`1 <= null`, 3, "operator <= not defined on null", 0},
	{`[1] == [1]`, 5, "operator == not defined on list", 0},
	{`[1] == x`, 5, "operator == not defined on list", 0},
	{`1 + "a"`, 3, "mismatched types int and string for +", 0},
	{`"a" - "b"`, 5, "operator - not defined on string", 0},
	{`true * 2`, 6, "operator * not defined on bool", 0},
	{`1.5 % 1`, 5, "operator % not defined on float", 0},
	{`null + 1`, 6, "operator + not defined on null", 0},
	{`x * null`, 3, "operator * not defined on null", 0},
	{`-"a"`, 1, "operator - not defined on string", 0},
	{`-null`, 1, "operator - not defined on null", 0},
	{`- true`, 1, "operator - not defined on bool", 0},
	{`!1`, 1, "operand of ! must be bool, got int", 0},
	{`!"a"`, 1, "operand of ! must be bool, got string", 0},
	{`!null`, 1, "operand of ! must be bool, got null", 0},
	{`1 && true`, 1, "operand of && must be bool, got int", 0},
	{`true || "a"`, 9, "operand of || must be bool, got string", 0},
	{`x && null`, 6, "operand of && must be bool, got null", 0},
	{`x in "abc"`, 6, "right operand of in must be a list, got string", 0},
	{`x not in 1`, 10, "right operand of not in must be a list, got int", 0},
	{`x in null`, 6, "right operand of in must be a list, got null", 0},
	{`[1] in [[1]]`, 5, "operator in not defined on list", 0},
	{`x in [[1]]`, 7, "operator in not defined on list", 0},
	{`"a" in [1, "b"]`, 9, "mismatched types string and int for in", 0},
	{`1 in [1, "a"]`, 10, "mismatched types int and string for in", 0},
	{`1 not in ["b"]`, 11, "mismatched types int and string for not in", 0},

	// constant folding
	{`1 / 0`, 3, "division by zero", 0},
	{`x > 1 % 0`, 7, "division by zero", 0},
	{`1.0 / 0`, 5, "division by zero", 0},
	{`9223372036854775807 + 1`, 21, "integer overflow", 0},
	{`-9223372036854775808 - 1`, 22, "integer overflow", 0},
	{`-9223372036854775808 * -1`, 22, "integer overflow", 0},
	{`-1 * -9223372036854775808`, 4, "integer overflow", 0},
	{`4611686018427387904 * 2`, 21, "integer overflow", 0},
	{`-9223372036854775808 / -1`, 22, "integer overflow", 0},
	{`-(-9223372036854775808)`, 1, "integer overflow", 0},
	{`x || 1 / 0 > 1`, 8, "division by zero", 0},
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range compileErrCases {
		p, err := Compile(tc.src, nil)
		if p != nil {
			t.Errorf("Compile(%q): got program, want nil", tc.src)
		}
		checkErr(t, "Compile", err, tc)
	}
}

// envErrCases fail to compile against testEnv (and compile without it).
var envErrCases = []errCase{
	{`foo == 1`, 1, `unknown field "foo"`, 0},
	{`status == "A" && foo.bar > 1`, 18, `unknown field "foo.bar"`, 0},
	{`customer.nope == "x"`, 1, `unknown field "customer.nope"`, 0},
	{`status.nope == "x"`, 1, `unknown field "status.nope"`, 0},
	{`has(nope)`, 5, `unknown field "nope"`, 0},
	{`lower(nope)`, 7, `unknown field "nope"`, 0},
	{`x in [status]`, 1, `unknown field "x"`, 0},
	{`amount_minor == "x"`, 14, "mismatched types int and string for ==", 0},
	{`"x" == amount_minor`, 5, "mismatched types string and int for ==", 0},
	{`status == 1`, 8, "mismatched types string and int for ==", 0},
	{`status != active`, 8, "mismatched types string and bool for !=", 0},
	{`created_at == 1`, 12, "mismatched types time and int for ==", 0},
	{`created_at < "2024-01-01"`, 12, "mismatched types time and string for <", 0},
	{`active > inactive`, 8, "operator > not defined on bool", 0},
	{`tags == codes`, 6, "operator == not defined on list", 0},
	{`customer == customer`, 10, "operator == not defined on map", 0},
	{`amount_minor > 0 && status + 1 > 2`, 28, "mismatched types string and int for +", 0},
	{`price % 2 == 1`, 7, "operator % not defined on float", 0},
	{`-status`, 1, "operator - not defined on string", 0},
	{`!status`, 1, "operand of ! must be bool, got string", 0},
	{`amount_minor && active`, 1, "operand of && must be bool, got int", 0},
	{`active || status`, 11, "operand of || must be bool, got string", 0},
	{`amount_minor in ["a"]`, 18, "mismatched types int and string for in", 0},
	{`status in [1, "a"]`, 12, "mismatched types string and int for in", 0},
	{`tags in [1]`, 6, "operator in not defined on list", 0},
	{`"a" in status`, 8, "right operand of in must be a list, got string", 0},
	{`1 in customer`, 6, "right operand of in must be a list, got map", 0},
	{`lower(amount_minor)`, 7, "lower: argument must be string, got int", 0},
	{`len(amount_minor)`, 5, "len: argument must be string, list or map, got int", 0},
	{`startsWith(status, amount_minor)`, 20, "startsWith: argument must be string, got int", 0},
	{`endsWith(created_at, "Z")`, 10, "endsWith: argument must be string, got time", 0},
}

func TestCompileErrorsWithEnv(t *testing.T) {
	for _, tc := range envErrCases {
		p, err := Compile(tc.src, testEnv)
		if p != nil {
			t.Errorf("Compile(%q, env): got program, want nil", tc.src)
		}
		checkErr(t, "Compile", err, tc)
	}
}

// runtimeErrCases compile without an Env and fail on testRec.
var runtimeErrCases = []errCase{
	// null operands
	{`note > 1`, 1, `field "note" is null`, 0},
	{`1 < note`, 5, `field "note" is null`, 0},
	{`missing >= 1`, 1, `field "missing" is null`, 0},
	{`customer.nothing < "a"`, 1, `field "customer.nothing" is null`, 0},
	{`note + 1`, 1, `field "note" is null`, 0},
	{`1 * note`, 5, `field "note" is null`, 0},
	{`-note`, 2, `field "note" is null`, 0},
	{`!note`, 2, `field "note" is null`, 0},
	{`note && true`, 1, `field "note" is null`, 0},
	{`false || missing`, 10, `field "missing" is null`, 0},
	{`lower(note)`, 7, `field "note" is null`, 0},
	{`len(missing)`, 5, `field "missing" is null`, 0},
	{`startsWith(status, note)`, 20, `field "note" is null`, 0},
	{`1 in note`, 6, `field "note" is null`, 0},
	{`created_at < note`, 14, `field "note" is null`, 0},

	// type mismatches on Any fields
	{`status == 1`, 8, "mismatched types string and int for ==", 0},
	{`1 == status`, 3, "mismatched types int and string for ==", 0},
	{`status != true`, 8, "mismatched types string and bool for !=", 0},
	{`status == amount_minor`, 8, "mismatched types string and int for ==", 0},
	{`amount_minor == "x"`, 14, "mismatched types int and string for ==", 0},
	{`price == "x"`, 7, "mismatched types float and string for ==", 0},
	{`active == "x"`, 8, "mismatched types bool and string for ==", 0},
	{`status > 1`, 8, "mismatched types string and int for >", 0},
	{`amount_minor < "x"`, 14, "mismatched types int and string for <", 0},
	{`created_at == 1`, 12, "mismatched types time and int for ==", 0},
	{`created_at < "2024"`, 12, "mismatched types time and string for <", 0},
	{`active > inactive`, 8, "operator > not defined on bool", 0},
	{`tags == codes`, 6, "operator == not defined on list", 0},
	{`customer != customer`, 10, "operator != not defined on map", 0},
	{`status + 1`, 8, "mismatched types string and int for +", 0},
	{`status - currency`, 8, "operator - not defined on string", 0},
	{`price % 2`, 7, "operator % not defined on float", 0},
	{`-status`, 1, "operator - not defined on string", 0},
	{`!status`, 2, `field "status" must be bool, got string`, 0},
	{`status && true`, 1, `field "status" must be bool, got string`, 0},
	{`true && amount_minor + 1`, 9, "operand of && must be bool, got int", 0},
	{`!(amount_minor + 1)`, 3, "operand of ! must be bool, got int", 0},
	{`status in [1, 2]`, 8, "mismatched types string and int for in", 0},
	{`amount_minor in ["a"]`, 14, "mismatched types int and string for in", 0},
	{`amount_minor in [status]`, 14, "mismatched types int and string for in", 0},
	{`amount_minor in tags`, 14, "mismatched types int and string for in", 0},
	{`"A" not in nums`, 5, "mismatched types string and int for not in", 0},
	{`tags in [1]`, 6, "operator in not defined on list", 0},
	{`1 in status`, 6, "right operand of in must be a list, got string", 0},
	{`1 in customer`, 6, "right operand of in must be a list, got map", 0},
	{`1 in badlist`, 6, "list element 0: unsupported Go type struct {}", 0},
	{`lower(amount_minor)`, 7, "lower: argument must be string, got int", 0},
	{`upper(tags)`, 7, "upper: argument must be string, got list", 0},
	{`len(amount_minor)`, 5, "len: argument must be string, list or map, got int", 0},
	{`contains(status, active)`, 18, "contains: argument must be string, got bool", 0},

	// arithmetic failures
	{`big + 1`, 5, "integer overflow", 0},
	{`small - 1`, 7, "integer overflow", 0},
	{`small * -1`, 7, "integer overflow", 0},
	{`-1 * small`, 4, "integer overflow", 0},
	{`big * 2`, 5, "integer overflow", 0},
	{`small / -1`, 7, "integer overflow", 0},
	{`-small`, 1, "integer overflow", 0},
	{`amount_minor / 0`, 14, "division by zero", 0},
	{`amount_minor % 0`, 14, "division by zero", 0},
	{`price / 0`, 7, "division by zero", 0},
	{`price / 0.0`, 7, "division by zero", 0},

	// unsupported values and bad paths
	{`weird == 1`, 1, `field "weird": unsupported Go type struct {}`, 0},
	{`bytes == "x"`, 1, `field "bytes": unsupported Go type []uint8`, 0},
	{`u64 > 1`, 1, `field "u64": uint64 value 9223372036854775808 out of int64 range`, 0},
	{`status.x == 1`, 1, `field "status.x": "status" is string, not a map`, 0},
	{`customer.email.x.y == 1`, 1, `field "customer.email.x.y": "customer.email" is string, not a map`, 0},
	{`status.x`, 1, `field "status.x": "status" is string, not a map`, 0},
	{`customer.tier.x && true`, 1, `field "customer.tier.x": "customer.tier" is string, not a map`, 0},
	{`weird`, 1, `field "weird": unsupported Go type struct {}`, 0},
}

func TestRuntimeErrors(t *testing.T) {
	for _, fast := range []bool{true, false} {
		noFast = !fast
		for _, tc := range runtimeErrCases {
			p, err := Compile(tc.src, nil)
			if err != nil {
				t.Errorf("Compile(%q): got error %v, want nil", tc.src, err)
				continue
			}
			got, err := p.Eval(testRec())
			if got != nil {
				t.Errorf("Eval(%q): got %#v with error, want nil", tc.src, got)
			}
			checkErr(t, "Eval", err, tc)
			if p.Type() == Bool || p.Type() == Any {
				_, err = p.EvalBool(testRec())
				checkErr(t, "EvalBool", err, tc)
			}
		}
	}
	noFast = false
}

func TestEvalBool(t *testing.T) {
	for _, tc := range []struct {
		src string
		env Env
		errCase
	}{
		{`status`, nil, errCase{`status`, 1, `field "status" must be bool, got string`, 0}},
		{`note`, nil, errCase{`note`, 1, `field "note" is null`, 0}},
		{`missing`, nil, errCase{`missing`, 1, `field "missing" is null`, 0}},
		{`customer.nothing`, nil, errCase{`customer.nothing`, 1, `field "customer.nothing" is null`, 0}},
		{`amount_minor + 1`, nil, errCase{`amount_minor + 1`, 1, "expression must be bool, got int", 0}},
		{` lower(status)`, nil, errCase{` lower(status)`, 2, "expression must be bool, got string", 0}},
		{`1 + 1`, nil, errCase{`1 + 1`, 1, "expression must be bool, got int", 0}},
		{`status`, testEnv, errCase{`status`, 1, "expression must be bool, got string", 0}},
		{`null`, nil, errCase{`null`, 1, "expression must be bool, got null", 0}},
	} {
		p, err := Compile(tc.src, tc.env)
		if err != nil {
			t.Errorf("Compile(%q): got error %v", tc.src, err)
			continue
		}
		got, err := p.EvalBool(testRec())
		if got {
			t.Errorf("EvalBool(%q): got true with error", tc.src)
		}
		checkErr(t, "EvalBool", err, tc.errCase)
	}
	p, err := Compile(`active`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.EvalBool(testRec()); !got || err != nil {
		t.Errorf("EvalBool(active): got %v, %v, want true, nil", got, err)
	}
}

func TestCompileBool(t *testing.T) {
	for _, tc := range []struct {
		src string
		env Env
		errCase
	}{
		{`amount_minor + 1`, testEnv, errCase{`amount_minor + 1`, 1, "expression must be bool, got int", 0}},
		{`  status`, testEnv, errCase{`  status`, 3, "expression must be bool, got string", 0}},
		{`"abc"`, nil, errCase{`"abc"`, 1, "expression must be bool, got string", 0}},
		{`1.5`, nil, errCase{`1.5`, 1, "expression must be bool, got float", 0}},
		{`null`, nil, errCase{`null`, 1, "expression must be bool, got null", 0}},
		{`[true]`, nil, errCase{`[true]`, 1, "expression must be bool, got list", 0}},
		{`lower(status)`, nil, errCase{`lower(status)`, 1, "expression must be bool, got string", 0}},
		{`created_at`, testEnv, errCase{`created_at`, 1, "expression must be bool, got time", 0}},
		{`status ==`, nil, errCase{`status ==`, 10, "unexpected end of expression", 0}},
	} {
		p, err := CompileBool(tc.src, tc.env)
		if p != nil {
			t.Errorf("CompileBool(%q): got program, want nil", tc.src)
		}
		checkErr(t, "CompileBool", err, tc.errCase)
	}
	for _, src := range []string{`status`, `amount_minor + 1`, `active`, `true`, `status == "A"`, `has(x)`} {
		if _, err := CompileBool(src, nil); err != nil {
			t.Errorf("CompileBool(%q, nil): got error %v, want nil", src, err)
		}
	}
	for _, src := range []string{`active`, `status == "A"`, `weird`, `u64`} {
		if _, err := CompileBool(src, testEnv); err != nil {
			t.Errorf("CompileBool(%q, env): got error %v, want nil", src, err)
		}
	}
}

func TestProgramAccessors(t *testing.T) {
	src := ` amount_minor > 0 && has(customer.email) && (status == "A" || amount_minor < 10) && lower(customer.email) != "x"`
	p, err := Compile(src, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.String(); got != src {
		t.Errorf("String(): got %q, want %q", got, src)
	}
	want := []string{"amount_minor", "customer.email", "status"}
	got := p.Fields()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Fields(): got %q, want %q", got, want)
	}
	got[0] = "mutated"
	if p.Fields()[0] != "amount_minor" {
		t.Errorf("Fields(): got a shared slice, want a copy")
	}
	if p2, _ := Compile(`1 + 2`, nil); len(p2.Fields()) != 0 {
		t.Errorf("Fields() of a constant: got %q, want none", p2.Fields())
	}

	for _, tc := range []struct {
		src string
		env Env
		typ Type
	}{
		{`status`, nil, Any},
		{`status`, testEnv, String},
		{`amount_minor + 1`, testEnv, Int},
		{`amount_minor + 1.5`, testEnv, Float},
		{`amount_minor + 1.5`, nil, Any},
		{`status + "x"`, testEnv, String},
		{`1 + 2`, nil, Int},
		{`status == "x"`, nil, Bool},
		{`null`, nil, Null},
		{`[1]`, nil, List},
		{`len(status)`, nil, Int},
		{`lower(status)`, nil, String},
		{`created_at`, testEnv, Time},
		{`customer`, testEnv, Map},
		{`-price`, testEnv, Float},
	} {
		p, err := Compile(tc.src, tc.env)
		if err != nil {
			t.Errorf("Compile(%q): got error %v", tc.src, err)
			continue
		}
		if p.Type() != tc.typ {
			t.Errorf("Type() of %q: got %v, want %v", tc.src, p.Type(), tc.typ)
		}
	}
}

func TestTypeString(t *testing.T) {
	want := []string{"any", "null", "bool", "int", "float", "string", "time", "list", "map"}
	for i, w := range want {
		if got := Type(i).String(); got != w {
			t.Errorf("Type(%d).String(): got %q, want %q", i, got, w)
		}
	}
	if got := Type(42).String(); got != "Type(42)" {
		t.Errorf("Type(42).String(): got %q, want %q", got, "Type(42)")
	}
}

func TestMapEnv(t *testing.T) {
	env := MapEnv{
		"status":         String,
		"attrs":          Map, // open map: no children declared
		"customer":       Map, // closed record
		"customer.email": String,
		"customer.meta":  Map, // open map inside a record
		"blob":           Any,
		"bad":            Type(99),
	}
	for _, tc := range []struct {
		path string
		typ  Type
		ok   bool
	}{
		{"status", String, true},
		{"attrs", Map, true},
		{"attrs.anything", Any, true},
		{"attrs.a.b", Any, true},
		{"customer", Map, true},
		{"customer.email", String, true},
		{"customer.phone", Any, false},
		{"customer.meta.k", Any, true},
		{"customer.email.x", Any, false},
		{"status.x", Any, false},
		{"blob.x", Any, true},
		{"nope", Any, false},
		{"nope.x", Any, false},
		{"bad", Type(99), true},
	} {
		typ, ok := env.Lookup(tc.path)
		if typ != tc.typ || ok != tc.ok {
			t.Errorf("Lookup(%q): got %v, %v, want %v, %v", tc.path, typ, ok, tc.typ, tc.ok)
		}
	}
	// An invalid type from an Env is treated as Any.
	p, err := Compile(`bad + 1`, env)
	if err != nil || p.Type() != Any {
		t.Errorf("Compile(bad + 1): got %v, %v, want type any", p, err)
	}
	// An empty MapEnv is a schema without fields.
	if _, err := Compile(`x == 1`, MapEnv{}); err == nil {
		t.Errorf("Compile with empty MapEnv: got nil error, want unknown field")
	}
}

// TestFastPathAgrees runs comparisons over many value kinds with and
// without the specialised closures and requires identical results.
func TestFastPathAgrees(t *testing.T) {
	values := []any{nil, "a", "b", "", true, false, int64(0), int64(-3), int64(7), 7, int32(7),
		uint8(7), 7.0, 7.5, float32(7), math.NaN(), math.Inf(1), t1, []any{"a"}, map[string]any{}, struct{}{}}
	consts := []string{`"a"`, `""`, `"b"`, `7`, `-3`, `0`, `7.0`, `7.5`, `true`, `false`, `null`}
	ops := []string{"==", "!=", "<", "<=", ">", ">="}
	type result struct {
		v   bool
		err string
	}
	run := func(src string, rec map[string]any) result {
		p, err := Compile(src, nil)
		if err != nil {
			return result{err: "compile: " + err.Error()}
		}
		v, err := p.EvalBool(rec)
		if err != nil {
			return result{err: err.Error()}
		}
		return result{v: v}
	}
	var srcs []string
	for _, k := range consts {
		for _, op := range ops {
			srcs = append(srcs, "f "+op+" "+k, k+" "+op+" f", "n.f "+op+" "+k)
		}
		srcs = append(srcs, "f in ["+k+"]", "f not in ["+k+", "+k+"]", "n.f in ["+k+", \"z\"]")
	}
	srcs = append(srcs, `f in ["a", "b"]`, `f in [7, 8]`, `f not in [0, -3]`, `n.f in ["", "b"]`)
	for _, v := range values {
		recs := []map[string]any{
			{"f": v, "n": map[string]any{"f": v}},
			{"n": v},
		}
		for _, rec := range recs {
			for _, src := range srcs {
				noFast = false
				fast := run(src, rec)
				noFast = true
				slow := run(src, rec)
				noFast = false
				if fast != slow {
					t.Errorf("%s with %#v: fast path got %+v, generic got %+v", src, rec, fast, slow)
				}
			}
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	rec := testRec()
	for _, src := range []string{
		`status == "APPROVED"`,
		`status != "x"`,
		`amount_minor > 123`,
		`123 <= amount_minor`,
		`price < 20.5`,
		`active == true`,
		`customer.tier == "gold"`,
		`currency in ["EUR", "USD"]`,
		`amount_int in [1, 7]`,
		`status == currency`,
		`created_at < settled_at`,
		`amount_minor + 1 > 2 * amount_int`,
		`amount_minor / 100.0 > 1.5`,
		`has(customer.email) && !endsWith(customer.email, "@x.com") && contains(customer.email, "@")`,
		`amount_minor > 0 && currency in ["EUR", "USD"] && customer.tier != "test" || note == null`,
		`len(status) > 3 && "vip" in tags && 2 in nums`,
	} {
		for _, env := range []Env{nil, testEnv} {
			p, err := CompileBool(src, env)
			if err != nil {
				t.Fatalf("CompileBool(%q): %v", src, err)
			}
			if _, err := p.EvalBool(rec); err != nil {
				t.Fatalf("EvalBool(%q): %v", src, err)
			}
			if n := testing.AllocsPerRun(100, func() { _, _ = p.EvalBool(rec) }); n != 0 {
				t.Errorf("EvalBool(%q): got %v allocs, want 0", src, n)
			}
		}
	}
}

func TestConcurrentEval(t *testing.T) {
	p, err := CompileBool(`amount_minor > 0 && currency in ["EUR", "USD"] && lower(customer.email) != "x"`, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rec := testRec()
			for i := 0; i < 500; i++ {
				rec["amount_minor"] = int64(i - g*50)
				got, err := p.EvalBool(rec)
				if want := i-g*50 > 0; err != nil || got != want {
					t.Errorf("EvalBool: got %v, %v, want %v, nil", got, err, want)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

// TestEvalDoesNotModifyRecord checks that records are only read.
func TestEvalDoesNotModifyRecord(t *testing.T) {
	rec := testRec()
	before := len(rec)
	p, err := Compile(`has(a.b.c) || a.b.c == null || len([status]) > 0`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Eval(rec); err != nil {
		t.Fatal(err)
	}
	if len(rec) != before {
		t.Errorf("record: got %d keys after Eval, want %d", len(rec), before)
	}
}

// TestTypedNullable checks that a field with a static type may still be
// null at run time.
func TestTypedNullable(t *testing.T) {
	env := MapEnv{"note": String, "qty": Int}
	rec := map[string]any{"note": nil}
	for _, tc := range []evalCase{
		{`note == "x"`, false},
		{`note != "x"`, true},
		{`note == null`, true},
		{`qty in [1, 2]`, false},
		{`has(qty) && qty > 1`, false},
	} {
		p, err := CompileBool(tc.src, env)
		if err != nil {
			t.Errorf("CompileBool(%q): got error %v", tc.src, err)
			continue
		}
		got, err := p.EvalBool(rec)
		if err != nil || got != tc.want {
			t.Errorf("EvalBool(%q): got %v, %v, want %v, nil", tc.src, got, err, tc.want)
		}
	}
	for _, tc := range []errCase{
		{`note > "a"`, 1, `field "note" is null`, 0},
		{`qty + 1 == 2`, 1, `field "qty" is null`, 0},
		{`lower(note) == "a"`, 7, `field "note" is null`, 0},
	} {
		p, err := CompileBool(tc.src, env)
		if err != nil {
			t.Errorf("CompileBool(%q): got error %v", tc.src, err)
			continue
		}
		_, err = p.EvalBool(rec)
		checkErr(t, "EvalBool", err, tc)
	}
	// A typed field holding a value of another type is a run-time error.
	p, err := CompileBool(`qty > 1`, env)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.EvalBool(map[string]any{"qty": "3"})
	checkErr(t, "EvalBool", err, errCase{`qty > 1`, 5, "mismatched types string and int for >", 0})
}
