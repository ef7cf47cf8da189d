package avro

import "errors"

// Sentinel errors. Every error returned by this package starts with "avro: "
// and wraps one of these (or an I/O or JSON error) so callers can branch with
// [errors.Is], for example to route a record to a dead-letter queue.
var (
	// ErrNotSingleObject reports bytes that are not an Avro single-object
	// encoding: shorter than the 10-byte header or not starting with the
	// 0xC3 0x01 marker.
	ErrNotSingleObject = errors.New("not an Avro single-object encoding")

	// ErrUnknownFingerprint reports a single-object encoding whose writer
	// schema fingerprint is not registered.
	ErrUnknownFingerprint = errors.New("unknown schema fingerprint")

	// ErrUnknownSchema reports a schema name that is not registered as a
	// current schema, or a short name that matches several current schemas.
	ErrUnknownSchema = errors.New("unknown schema")

	// ErrInvalidSchema reports a schema document that is not valid Avro or
	// that this package does not support (for example a top-level type that
	// is not a record).
	ErrInvalidSchema = errors.New("invalid schema")

	// ErrIncompatible reports that data written with one schema cannot be
	// read with another (for example a reader field without a default that
	// the writer lacks, or a type change that is not a permitted promotion).
	ErrIncompatible = errors.New("incompatible schemas")

	// ErrMalformed reports a single-object body that does not decode with the
	// writer schema named by its fingerprint (truncated, trailing bytes,
	// invalid union index, implausible lengths, ...).
	ErrMalformed = errors.New("malformed record")

	// ErrInvalidRecord reports a plain record passed to Encode that does not
	// match the schema (missing required field, unknown field, wrong Go type).
	ErrInvalidRecord = errors.New("invalid record")
)
