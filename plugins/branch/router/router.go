// Package router is the branch plugin's predicate router: it sends each
// record to the output of the first route whose boolean expression is
// true, or to the default output when none is. It is the seed's APPROVED /
// DECLINED / REFUNDED / BILLED split, in general form.
//
// The engine runs it in-process for a pipeline's `branches:` section
// (engine.WithProcessor(router.Name, router.New)); the binary in the parent
// folder, plugins/branch, serves the same router out-of-process.
package router

import (
	"context"
	"errors"
	"fmt"

	"github.com/billing-engine/billing/engine/expr"
	"github.com/billing-engine/billing/engine/sdk"
)

// Name is the plugin's registered name.
const Name = "branch"

// ErrConfig reports a bad router configuration.
var ErrConfig = errors.New("branch: config")

// Route is one compiled route.
type Route struct {
	// Output is the output a matching record goes to.
	Output string
	// When is the predicate.
	When *expr.Program
}

// Router routes records by predicate. It is immutable and safe for
// concurrent use.
type Router struct {
	routes     []Route
	defaultOut string
	hasDefault bool
}

// New builds a Router from settings of the form
//
//	routes:  [{output: approved, when: 'status == "APPROVED"'}, ...]
//	default: unknown-status   # optional; without it an unmatched record goes to the DLQ
//
// It is an sdk.Factory.
func New(_ context.Context, cfg sdk.Config) (sdk.Processor, error) {
	return Compile(cfg.Settings)
}

// Compile builds a Router from its settings, reporting every bad route.
func Compile(settings map[string]any) (*Router, error) {
	r := &Router{}
	if d, ok := settings["default"]; ok {
		s, ok := d.(string)
		if !ok {
			return nil, fmt.Errorf("%w: default: want a string, got %T", ErrConfig, d)
		}
		r.defaultOut, r.hasDefault = s, true
	}
	raw, _ := settings["routes"].([]any)
	var errs []error
	for i, item := range raw {
		route, err := compileRoute(item)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: routes[%d]: %w", ErrConfig, i, err))
			continue
		}
		r.routes = append(r.routes, route)
	}
	if len(r.routes) == 0 && !r.hasDefault && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%w: no routes and no default", ErrConfig))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

func compileRoute(item any) (Route, error) {
	m, ok := item.(map[string]any)
	if !ok {
		return Route{}, fmt.Errorf("want a map, got %T", item)
	}
	out, _ := m["output"].(string)
	when, _ := m["when"].(string)
	if out == "" || when == "" {
		return Route{}, errors.New("output and when are required")
	}
	p, err := expr.CompileBool(when, nil)
	if err != nil {
		return Route{}, fmt.Errorf("when %q: %w", when, err)
	}
	return Route{Output: out, When: p}, nil
}

// Process routes each record. A record whose predicate cannot be evaluated
// (a missing field, a type mismatch) goes to the DLQ with the reason; so
// does an unmatched record when there is no default route.
func (r *Router) Process(_ context.Context, batch []sdk.Record) ([]sdk.Result, error) {
	out := make([]sdk.Result, len(batch))
	for i, rec := range batch {
		out[i] = r.route(rec)
	}
	return out, nil
}

func (r *Router) route(rec sdk.Record) sdk.Result {
	if rec.Data == nil {
		return sdk.Result{DLQ: "branch: record not decoded"}
	}
	for _, rt := range r.routes {
		ok, err := rt.When.EvalBool(rec.Data)
		if err != nil {
			return sdk.Result{DLQ: "branch " + rt.Output + ": " + err.Error()}
		}
		if ok {
			return sdk.Pass(rec, rt.Output)
		}
	}
	if r.hasDefault {
		return sdk.Pass(rec, r.defaultOut)
	}
	return sdk.Result{DLQ: "branch: no route matched"}
}
