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
package sdk

import (
	"context"
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
}

// Factory builds a Processor from its configuration. It returns an error
// for a bad configuration, naming the setting.
type Factory func(ctx context.Context, cfg Config) (Processor, error)

// Pass returns a Result that sends r, unchanged, to output.
func Pass(r Record, output string) Result {
	return Result{Emits: []Emit{{Output: output, Key: r.Key, Value: r.Value, Headers: r.Headers, Data: r.Data}}}
}
