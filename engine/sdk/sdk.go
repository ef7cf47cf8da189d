// Package sdk is the public API for plugin authors: implement Processor, and
// either register it with the engine in-process or serve it from its own
// binary.
//
// A Processor receives records in batches (hundreds per call) and answers,
// per record, with zero or more records emitted to named outputs, or a
// dead-letter reason. Returning an error fails the whole batch: the engine
// retries it with backoff and, when retries are exhausted, sends each of its
// records to the dead-letter queue with the error as the reason.
//
// The pipeline file maps a stage's output names to topics. The output ""
// (also spelled "next") passes the record on to the next stage.
//
// # In-process or out-of-process
//
// The same Processor runs either way. In-process, the embedder registers its
// Factory with engine.WithProcessor. Out-of-process, the plugin is a small
// program whose main calls Serve, and the pipeline file declares it:
//
//	plugins:
//	  tagger:
//	    command: ../bin/plugins/tagger   # relative to the pipeline file
//	    timeout: 30s                     # one batch call; a hung call restarts the plugin
//	    config: {threshold: 100000}
//
// The engine starts the binary over hashicorp/go-plugin (gRPC, mutual TLS,
// the handshake in Handshake), calls Configure with the stage's Config, and
// sends batches. The SDK decodes each record's Value with the shared schemas
// before calling Process, so an out-of-process Processor sees Record.Data
// exactly as an in-process one does; a Processor that does not read Data
// says so as a DataUser, and the plugin then skips decoding. A plugin that
// crashes or hangs is killed, started again and configured again, and the
// batch is retried.
//
// Package sdktest runs a Processor through the real gRPC path in a test.
package sdk

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Header is a Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is one Kafka record as a stage sees it. A Processor must not
// modify a Record's slices or map; it emits new values instead.
type Record struct {
	// Key and Value are the record's bytes; Value is Avro in single-object
	// encoding.
	Key, Value []byte
	// Headers are the record's headers, in order.
	Headers []Header
	// Topic, Partition and Offset say where the record was consumed.
	Topic     string
	Partition int32
	Offset    int64
	// Timestamp is the record's Kafka timestamp.
	Timestamp time.Time
	// Data is Value decoded with the pipeline's source schema (unions
	// unwrapped), or nil when the value was not decoded for this stage.
	Data map[string]any
}

// Emit is a record a Processor sends to one of its outputs.
type Emit struct {
	// Output names the output; "" and "next" go to the next stage.
	Output string
	// Key, Value and Headers of the new record. A nil Key keeps the input
	// record's key; nil Headers keep the input record's headers.
	Key, Value []byte
	Headers    []Header
	// Data, when set, is Value in decoded form; the engine uses it to skip
	// decoding Value again for the next stage.
	Data map[string]any
}

// Result is a Processor's answer for one input record.
type Result struct {
	// Emits are the records produced for this input, in order.
	Emits []Emit
	// DLQ, when non-empty, sends the input record to the dead-letter
	// queue with this reason. Emits are still produced.
	DLQ string
}

// Processor processes batches of records. Process is called by one
// goroutine per partition at a time, but several partitions may call it
// concurrently: implementations must be safe for concurrent use.
type Processor interface {
	// Process returns exactly one Result per input record, in order. A
	// non-nil error fails the batch for a retry; ctx carries the per-call
	// deadline.
	Process(ctx context.Context, batch []Record) ([]Result, error)
}

// DataUser is implemented by a Processor that can say whether it reads
// Record.Data. A Processor that does not implement it uses Data.
//
// Out-of-process, the SDK decodes every record's Value before calling
// Process, in the plugin, which costs about as much as the engine's own
// decoding of the batch. When UsesData reports false, Serve skips that:
// Process gets each Record with Data nil, and a record whose Value does
// not decode with the source schema reaches Process like the others
// instead of being dead-lettered by the SDK (in a pipeline the engine has
// already dead-lettered such records before any stage). Everything else
// about the Record is the same.
//
// In-process the engine has decoded the records already, for its filters
// and branches, and passes Data along whatever UsesData says: a Processor
// must not rely on Data being nil.
type DataUser interface {
	// UsesData reports whether Process reads Record.Data. It is called
	// once, after the Factory built the Processor, so the answer may
	// depend on the Processor's configuration.
	UsesData() bool
}

// usesData reports whether p reads Record.Data: true unless it says
// otherwise as a DataUser.
func usesData(p Processor) bool {
	if u, ok := p.(DataUser); ok {
		return u.UsesData()
	}
	return true
}

// Closer is implemented by Processors that hold resources. The engine
// calls Close once, when the pipeline stops.
type Closer interface {
	Close() error
}

// Config is what a Processor is built from.
type Config struct {
	// Name is the plugin's name in the pipeline file.
	Name string
	// Pipeline and Stage name where this instance runs.
	Pipeline, Stage string
	// Settings is the plugin's `config:` from the pipeline file, the
	// stage's own merged over the plugin's.
	Settings map[string]any
	// SchemasDir is the directory of the shared .avsc schemas.
	SchemasDir string
	// Schema is the full name of the pipeline's source schema (e.g.
	// "billing.Transaction"): the schema Record.Data is decoded with.
	Schema string
	// Logger is where the Processor logs. The engine sets it in-process
	// (with plugin, pipeline and stage attributes) and Serve sets it
	// out-of-process (its records reach the engine's log). It may be nil
	// in a Config built by hand: use Log, which never returns nil.
	Logger *slog.Logger
}

// Log returns c.Logger, or a logger that discards when it is nil.
func (c Config) Log() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Info describes a plugin to the engine.
type Info struct {
	// Name is the plugin's own name. Serve defaults it to the binary's
	// base name.
	Name string
	// Version is free-form. Serve defaults it to the main module's version
	// from the build information.
	Version string
	// Outputs lists the output names the plugin may emit to, besides
	// "next". The engine's validate command reports a stage that maps an
	// output not in the list. Empty means the plugin does not say.
	Outputs []string
}

// Factory builds a Processor from its configuration. It returns an error
// for a bad configuration, naming the setting.
type Factory func(ctx context.Context, cfg Config) (Processor, error)

// Pass returns a Result that sends r, unchanged, to output.
func Pass(r Record, output string) Result {
	return Result{Emits: []Emit{{Output: output, Key: r.Key, Value: r.Value, Headers: r.Headers, Data: r.Data}}}
}

// ErrUnavailable marks a failure of something a Processor depends on that
// will pass by itself: a database or mail server that is down or
// unreachable. A batch that fails with an error wrapping ErrUnavailable is
// retried with backoff for as long as it takes; unlike other errors it
// does not count against the stage's retries and never sends the batch to
// the dead-letter queue. Wrap with Unavailable, or with fmt.Errorf and %w.
var ErrUnavailable = errors.New("unavailable")

// Unavailable wraps err so that errors.Is(err, ErrUnavailable) holds. It
// returns nil for a nil err.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return &unavailableError{err}
}

type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }

func (e *unavailableError) Unwrap() []error { return []error{e.err, ErrUnavailable} }
