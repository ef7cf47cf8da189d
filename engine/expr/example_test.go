package expr_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/billing-engine/billing/engine/expr"
)

func Example() {
	// The schema of the records the filter will see.
	env := expr.MapEnv{
		"status":         expr.String,
		"amount_minor":   expr.Int,
		"currency":       expr.String,
		"customer":       expr.Map,
		"customer.email": expr.String,
	}
	p, err := expr.CompileBool(`status == "APPROVED" && amount_minor > 0 && currency in ["EUR", "USD"]`, env)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Fields())

	for _, rec := range []map[string]any{
		{"status": "APPROVED", "amount_minor": int64(1250), "currency": "EUR"},
		{"status": "APPROVED", "amount_minor": int64(1250), "currency": "JPY"},
		{"status": "DECLINED", "amount_minor": nil, "currency": "EUR"},
	} {
		ok, err := p.EvalBool(rec)
		fmt.Println(ok, err)
	}

	// Compile errors carry the position inside the expression.
	_, err = expr.CompileBool(`amount_minor == "x"`, env)
	fmt.Println(err)
	_, err = expr.CompileBool(`customer.emial != ""`, env)
	var e *expr.Error
	if errors.As(err, &e) {
		fmt.Println(e.Offset, e.Column, e.Msg)
	}

	// Run-time errors too: ordering a null field is an error.
	q, _ := expr.CompileBool(`amount_minor > 0`, env)
	_, err = q.EvalBool(map[string]any{"amount_minor": nil})
	fmt.Println(err)

	// Output:
	// [status amount_minor currency]
	// true <nil>
	// false <nil>
	// false <nil>
	// expr: column 14: mismatched types int and string for ==
	// 0 1 unknown field "customer.emial"
	// expr: column 1: field "amount_minor" is null
}

func ExampleProgram_Eval() {
	// Without an Env every field is allowed and checked at run time.
	p, err := expr.Compile(`amount_minor / 100.0`, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := p.Eval(map[string]any{"amount_minor": 1999})
	fmt.Printf("%T %v %v\n", v, v, err)

	// int, int32, float32... are normalised; times compare as instants.
	q, _ := expr.Compile(`settled_at > created_at && lower(customer.tier) == "gold"`, nil)
	v, err = q.Eval(map[string]any{
		"created_at": time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC),
		"settled_at": time.Date(2024, 3, 1, 13, 30, 0, 0, time.FixedZone("CET", 3600)),
		"customer":   map[string]any{"tier": "Gold"},
	})
	fmt.Println(v, err)
	// Output:
	// float64 19.99 <nil>
	// true <nil>
}
