// Package avro encodes and decodes the Avro values carried on the billing
// engine's Kafka topics.
//
// Values use Avro's single-object encoding: the marker 0xC3 0x01, the
// 8-byte little-endian CRC-64-AVRO (Rabin) fingerprint of the writer
// schema's Parsing Canonical Form, then the Avro binary body. There is no
// schema registry service: a [Registry] holds every known schema (loaded
// from the schemas directory with [LoadDir]) by fingerprint, finds the
// writer schema of each value from its header, and projects what the
// writer wrote onto the schema the caller reads with, so consumers keep
// reading records produced with older, compatible schema versions.
//
// # Schema files
//
// LoadDir reads dir/*.avsc as the current version of each record (one file
// per full name) and dir/versions/*.avsc as older, writer-only versions.
// Every older version must be readable by the current version of the same
// full name; LoadDir checks that at start-up.
//
// # Plain records
//
// Decode returns, and Encode accepts, "plain" records: map[string]any keyed
// by field name, with values
//
//	null                        nil
//	boolean                     bool
//	int                         int32 (Encode also accepts int, int64 in range)
//	long                        int64 (Encode also accepts int, int32)
//	float, double               float32, float64
//	bytes, fixed                []byte
//	string, enum                string
//	timestamp-millis/-micros    time.Time in UTC (Encode also accepts int64 in the schema's unit)
//	date                        time.Time at midnight UTC
//	time-millis, time-micros    time.Duration
//	decimal                     *big.Rat
//	array                       []any (Encode also accepts []map[string]any)
//	map                         map[string]any
//	record                      map[string]any
//	union                       the value of the chosen branch, unwrapped (nil for null)
//
// This is goavro's native form except for unions, which goavro wraps in a
// single-entry map keyed by the branch type name.
//
// # Schema resolution
//
// goavro decodes with the writer schema only, so Decode resolves writer
// against reader itself, following the Avro specification: reader fields
// the writer lacks take the reader's default (an error if there is none),
// writer fields the reader lacks are dropped, fields are also matched by
// the reader field's aliases, int promotes to long, float or double, long
// to float or double, float to double, string and bytes to each other, and
// a writer type T is read by a reader union containing T (and vice versa).
// Two extensions keep the plain representation stable: logical types
// convert by meaning (a timestamp-millis value read as timestamp-micros is
// the same instant; a long read as timestamp-millis becomes a time.Time),
// and an enum may be read as a string. The plan for each (writer, reader)
// pair is computed once and cached; decoding with the writer's own schema
// only unwraps unions. When the schema has only records (not recursive),
// enums, unions and primitive types, with timestamp-millis and
// timestamp-micros the only logical types, that case skips goavro: a
// decoder compiled from the schema builds the plain record directly, with
// the same result and far fewer allocations. Every other case decodes
// through goavro.
//
// # Fingerprints
//
// Fingerprints are computed by this package from the Parsing Canonical Form
// defined by the Avro specification, so they match what other Avro
// implementations write. goavro's own canonical form differs for logical
// types ({"type":"long"} instead of "long") and nested namespaces; the
// fingerprint goavro would write is accepted on read as an alias, never
// written.
//
// # Untrusted input
//
// Decode never panics. For schemas with arrays, maps or recursive types it
// first validates the body without allocating, bounding every array or map
// block count by the bytes left, because goavro sizes allocations from
// those counts.
package avro
