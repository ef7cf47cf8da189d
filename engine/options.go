package engine

import (
	"log/slog"
	"os"

	"github.com/billing-engine/billing/engine/sdk"
)

// Option configures New, Validate and Graph.
type Option func(*options)

type options struct {
	log        *slog.Logger
	processors map[string]sdk.Factory
	lookupEnv  func(string) (string, bool)
}

func newOptions(opts []Option) options {
	o := options{
		log:        slog.New(slog.DiscardHandler),
		processors: map[string]sdk.Factory{},
		lookupEnv:  os.LookupEnv,
	}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithLogger sets the logger. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithProcessor registers an in-process plugin under name. A pipeline file
// may use the name without declaring it under `plugins:`; declaring it there
// with a `command` runs the binary instead.
func WithProcessor(name string, f sdk.Factory) Option {
	return func(o *options) { o.processors[name] = f }
}

// WithLookupEnv sets how `${VAR}` references in the pipeline file are
// resolved. Default: os.LookupEnv.
func WithLookupEnv(fn func(string) (string, bool)) Option {
	return func(o *options) { o.lookupEnv = fn }
}

func (o options) builtin() map[string]bool {
	m := map[string]bool{dbUpsertPlugin: true} // registered by Run, see store.go
	for name := range o.processors {
		m[name] = true
	}
	return m
}
