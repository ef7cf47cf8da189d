package pipeline

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/billing-engine/billing/engine/avro"
	"github.com/billing-engine/billing/engine/expr"
)

// registry returns the schema registry, loading SchemasDir on first use.
// It returns nil, having reported why, when the directory does not load.
func (v *validator) registry() *avro.Registry {
	if v.regLoaded {
		return v.reg
	}
	v.regLoaded = true
	v.reg = v.opts.Schemas
	if v.reg == nil {
		if _, err := os.Stat(v.f.SchemasDir); err != nil {
			v.errorf("schemas", "schemas: %s: %s", v.rawPath("schemas", v.f.SchemasDir), fileProblem(err))
			return nil
		}
		reg, err := avro.LoadDir(v.f.SchemasDir)
		if err != nil {
			v.schemaErrors(err)
			return nil
		}
		v.reg = reg
	}
	return v.reg
}

// schemaErrors reports each problem LoadDir found.
func (v *validator) schemaErrors(err error) {
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	dir := v.rawPath("schemas", v.f.SchemasDir)
	for _, err := range errs {
		msg := strings.ReplaceAll(strings.TrimPrefix(err.Error(), "avro: "), v.f.SchemasDir, dir)
		v.errorf("schemas", "schemas: cannot load %s: %s", dir, msg)
	}
}

// sourceEnv checks that the schema named at path exists and returns its
// fields as an expression environment. It returns nil (no schema:
// expressions are then checked for syntax only) when it does not.
func (v *validator) sourceEnv(path, ctx, name string) expr.Env {
	reg := v.registry()
	if reg == nil {
		return nil
	}
	s, err := reg.Schema(name)
	if err != nil {
		have := strings.Join(reg.Names(), ", ")
		if have == "" {
			have = "no schemas"
		}
		msg := fmt.Sprintf("unknown schema %q in %s (it has %s)", name, v.rawPath("schemas", v.f.SchemasDir), have)
		if !errors.Is(err, avro.ErrUnknownSchema) {
			msg = strings.TrimPrefix(err.Error(), "avro: ")
		}
		v.errorf(path, "%s: source.schema: %s", ctx, msg)
		return nil
	}
	return schemaEnv{s}
}

// schemaEnv is an expr.Env over a record schema's fields.
type schemaEnv struct{ s *avro.Schema }

// Lookup implements expr.Env.
func (e schemaEnv) Lookup(path string) (expr.Type, bool) {
	f, ok := e.s.Field(path)
	if !ok {
		return expr.Any, false
	}
	return exprType(f.Type), true
}

// exprType maps an Avro field type to the expression type of its plain
// value. A nullable field has the type of its non-null branch; types the
// language has no operations for are Any, checked at run time.
func exprType(t avro.Type) expr.Type {
	switch t {
	case avro.String, avro.Enum:
		return expr.String
	case avro.Int, avro.Long:
		return expr.Int
	case avro.Float, avro.Double:
		return expr.Float
	case avro.Boolean:
		return expr.Bool
	case avro.Timestamp, avro.Date:
		return expr.Time
	case avro.Record, avro.Map:
		return expr.Map
	case avro.Array:
		return expr.List
	case avro.Null:
		return expr.Null
	}
	return expr.Any // bytes, fixed, decimal, time of day, unions
}

// expression compiles the boolean expression src found at path, against
// env, and reports a compile error at its column in the file. what
// prefixes the message; pos is the expression's position when the file
// was not loaded from YAML.
func (v *validator) expression(path, what, src string, pos Pos, env expr.Env) {
	_, err := expr.CompileBool(src, env)
	if err == nil {
		return
	}
	var ee *expr.Error
	if !errors.As(err, &ee) {
		v.errorf(path, "%s: %s", what, err.Error())
		return
	}
	at := v.at(path)
	if n, ok := v.f.exprs[path]; ok {
		at = v.f.src.valuePos(n, ee.Offset)
	} else if pos.Line > 0 {
		at = Pos{pos.Line, pos.Column + ee.Column - 1}
	}
	v.errs.add(at, "%s: %s", what, ee.Msg)
}
