package pluginpb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The packed format of ProcessRequest.batch and ProcessResponse.results
// (protocol version 2). Every number is a varint (encoding/binary's
// Uvarint, or Varint where signed):
//
//	batch    = count record*
//	record   = optbytes(key) optbytes(value) istring(topic)
//	           uvarint(uint32(partition)) varint(offset)
//	           varint(timestamp_unix_nano) headers
//	headers  = uvarint(0)                  nil headers
//	         | uvarint(n+1) header{n}      n headers (n may be 0)
//	header   = istring(key) optbytes(value)
//
//	results  = count result*
//	result   = bytes(dlq) uvarint(n) emit{n}
//	emit     = istring(output) flags
//	           [bytes(key)]      if flags&EmitKey
//	           [bytes(value)]    if flags&EmitValue
//	           [uvarint(n) header{n}] if flags&EmitHeaders
//
//	count    = uvarint(n)
//	bytes    = uvarint(len) byte{len}
//	optbytes = uvarint(0)                  nil
//	         | uvarint(len+1) byte{len}    a value, possibly empty
//	istring  = uvarint(0) bytes            a new string, interned
//	         | uvarint(k)                  the k-th interned string (k ≥ 1)
//
// flags is one byte. Interning: the first 32 distinct strings written as
// istring in one message (maxInterned, which is part of the protocol) are
// numbered 1, 2, ... in order of appearance; a later occurrence of one is
// written as its number. A batch's topic, its header
// keys and a stage's output names are then sent once per message, and
// the reader makes one Go string of each.
//
// An emit without EmitKey keeps the input record's key; without
// EmitValue its value is null, unless EmitValueIsInput says it is the
// input record's value; without EmitHeaders it keeps the input record's
// headers.

// Emit flags, the byte after an emit's output name.
const (
	// EmitKey says the emit's key follows; without it the emit keeps the
	// input record's key.
	EmitKey = 1 << iota
	// EmitValue says the emit's value follows (possibly empty); without it
	// and without EmitValueIsInput the value is null.
	EmitValue
	// EmitValueIsInput says the emit's value is the input record's,
	// unchanged, and is not sent back.
	EmitValueIsInput
	// EmitHeaders says the emit's headers follow; without it the emit
	// keeps the input record's headers.
	EmitHeaders

	emitFlags = EmitKey | EmitValue | EmitValueIsInput | EmitHeaders
)

// maxInterned bounds the interned strings of one message. Writer and
// Reader must agree on it: changing it changes the protocol version.
const maxInterned = 32

// Smallest encodings, which bound the counts a Reader accepts (and so
// what it makes its callers allocate) by the bytes that remain.
const (
	minRecordBytes = 7 // key, value, topic, partition, offset, timestamp, headers
	minResultBytes = 2 // dlq, emit count
	minEmitBytes   = 2 // output, flags
	minHeaderBytes = 2 // key, value
)

// ErrMalformed is wrapped by every error a Reader returns: the packed data
// is truncated, has trailing bytes, or says something impossible.
var ErrMalformed = errors.New("pluginpb: malformed packed data")

// PackedRecord is one record of a packed batch.
type PackedRecord struct {
	// Key and Value are nil for a null key or value.
	Key, Value []byte
	// Topic, Partition and Offset say where the record was consumed.
	Topic     string
	Partition int32
	Offset    int64
	// TimestampUnixNano is the record's timestamp; 0 means none.
	TimestampUnixNano int64
	// Headers is how many headers follow the record (Writer.Header,
	// Reader.Header), or -1 for nil headers.
	Headers int
}

// PackedResult is the start of one record's result; its emits follow.
type PackedResult struct {
	// DLQ, when not empty, sends the input record to the dead-letter
	// queue with this reason.
	DLQ string
	// Emits is how many emits follow (Writer.Emit, Reader.Emit).
	Emits int
}

// PackedEmit is one emit of a packed result.
type PackedEmit struct {
	// Output names the output.
	Output string
	// Key is the emit's key; nil keeps the input record's key. A Reader
	// returns a non-nil Key, possibly empty, for a key that was sent.
	Key []byte
	// Value is the emit's value; nil is a null value unless ValueIsInput.
	// A Reader returns a non-nil Value, possibly empty, for a value that
	// was sent.
	Value []byte
	// ValueIsInput says the value is the input record's (Value is then
	// ignored by a Writer and nil from a Reader).
	ValueIsInput bool
	// Headers is how many headers follow the emit, or -1 to keep the
	// input record's headers.
	Headers int
}

// Writer appends a packed batch or packed results to a buffer. Write the
// count first, then each item: a record followed by its headers, or a
// result followed by its emits, each followed by its headers. The counts
// written must match the items that follow; a Writer does not check them.
// The zero Writer writes to a new buffer. A Writer is not safe for
// concurrent use.
type Writer struct {
	buf  []byte
	strs [maxInterned]string
	n    int // interned strings
}

// Reset starts a new message in buf[:0], keeping buf's capacity.
func (w *Writer) Reset(buf []byte) {
	w.buf = buf[:0]
	clear(w.strs[:w.n])
	w.n = 0
}

// Bytes returns the message written so far. It aliases the Writer's
// buffer until the next Reset.
func (w *Writer) Bytes() []byte { return w.buf }

// Count writes the number of records or results that follow.
func (w *Writer) Count(n int) { w.uvarint(uint64(n)) }

// Record writes a record; r.Headers headers must follow (none for -1).
func (w *Writer) Record(r *PackedRecord) {
	w.optBytes(r.Key)
	w.optBytes(r.Value)
	w.istring(r.Topic)
	w.uvarint(uint64(uint32(r.Partition)))
	w.buf = binary.AppendVarint(w.buf, r.Offset)
	w.buf = binary.AppendVarint(w.buf, r.TimestampUnixNano)
	w.uvarint(uint64(r.Headers + 1))
}

// Header writes a header of the record or emit before it.
func (w *Writer) Header(key string, value []byte) {
	w.istring(key)
	w.optBytes(value)
}

// Result writes a result; r.Emits emits must follow.
func (w *Writer) Result(r PackedResult) {
	w.uvarint(uint64(len(r.DLQ)))
	w.buf = append(w.buf, r.DLQ...)
	w.uvarint(uint64(r.Emits))
}

// Emit writes an emit; e.Headers headers must follow (none for -1).
func (w *Writer) Emit(e *PackedEmit) {
	w.istring(e.Output)
	var flags byte
	if e.Key != nil {
		flags |= EmitKey
	}
	switch {
	case e.ValueIsInput:
		flags |= EmitValueIsInput
	case e.Value != nil:
		flags |= EmitValue
	}
	if e.Headers >= 0 {
		flags |= EmitHeaders
	}
	w.buf = append(w.buf, flags)
	if flags&EmitKey != 0 {
		w.bytes(e.Key)
	}
	if flags&EmitValue != 0 {
		w.bytes(e.Value)
	}
	if flags&EmitHeaders != 0 {
		w.uvarint(uint64(e.Headers))
	}
}

func (w *Writer) uvarint(v uint64) { w.buf = binary.AppendUvarint(w.buf, v) }

func (w *Writer) bytes(b []byte) {
	w.uvarint(uint64(len(b)))
	w.buf = append(w.buf, b...)
}

func (w *Writer) optBytes(b []byte) {
	if b == nil {
		w.buf = append(w.buf, 0)
		return
	}
	w.uvarint(uint64(len(b)) + 1)
	w.buf = append(w.buf, b...)
}

func (w *Writer) istring(s string) {
	for i, t := range w.strs[:w.n] {
		if t == s {
			w.uvarint(uint64(i + 1))
			return
		}
	}
	w.buf = append(w.buf, 0)
	w.uvarint(uint64(len(s)))
	w.buf = append(w.buf, s...)
	if w.n < maxInterned {
		w.strs[w.n] = s
		w.n++
	}
}

// Reader reads a packed batch or packed results. Read the count first,
// then each item as it was written, then call Finish. Errors are sticky:
// after the first, every read returns zero values and false, and Err and
// Finish return the error, which wraps ErrMalformed and says where the
// data went wrong.
//
// The byte slices a Reader returns alias the message it reads (capped, so
// that appending to one does not overwrite the next): the message must
// not be modified while they are in use. A Reader is not safe for
// concurrent use.
type Reader struct {
	b    []byte
	off  int
	strs [maxInterned]string
	n    int
	err  error
}

// Reset starts reading msg.
func (r *Reader) Reset(msg []byte) {
	*r = Reader{b: msg}
}

// Err returns the first error, or nil.
func (r *Reader) Err() error { return r.err }

// Finish returns the first error, or an error if bytes remain unread.
func (r *Reader) Finish() error {
	if r.err == nil && r.off != len(r.b) {
		r.fail("trailing data", fmt.Errorf("%d bytes after the last item", len(r.b)-r.off))
	}
	return r.err
}

// RecordCount reads the number of records of a batch.
func (r *Reader) RecordCount() int { return r.count("record count", minRecordBytes) }

// ResultCount reads the number of results.
func (r *Reader) ResultCount() int { return r.count("result count", minResultBytes) }

// Record reads a record into p; p.Headers headers follow. It reports
// false after an error.
func (r *Reader) Record(p *PackedRecord) bool {
	*p = PackedRecord{}
	p.Key = r.optBytes("key")
	p.Value = r.optBytes("value")
	p.Topic = r.istring("topic")
	start := r.off
	if part := r.uvarint("partition"); part <= math.MaxUint32 {
		p.Partition = int32(uint32(part))
	} else {
		r.failAt(start, "partition", fmt.Errorf("%d does not fit 32 bits", part))
	}
	p.Offset = r.varint("offset")
	p.TimestampUnixNano = r.varint("timestamp")
	p.Headers = r.optCount("header count", minHeaderBytes)
	if r.err != nil {
		*p = PackedRecord{}
		return false
	}
	return true
}

// Header reads a header of the record or emit before it.
func (r *Reader) Header() (key string, value []byte) {
	key = r.istring("header key")
	value = r.optBytes("header value")
	if r.err != nil {
		return "", nil
	}
	return key, value
}

// Result reads a result into p; p.Emits emits follow. It reports false
// after an error.
func (r *Reader) Result(p *PackedResult) bool {
	*p = PackedResult{}
	if dlq := r.bytes("dlq"); len(dlq) > 0 {
		p.DLQ = string(dlq)
	}
	p.Emits = r.count("emit count", minEmitBytes)
	if r.err != nil {
		*p = PackedResult{}
		return false
	}
	return true
}

// Emit reads an emit into p; p.Headers headers follow (none for -1). It
// reports false after an error.
func (r *Reader) Emit(p *PackedEmit) bool {
	*p = PackedEmit{Headers: -1}
	p.Output = r.istring("output")
	start := r.off
	flags := r.byte("emit flags")
	switch {
	case flags&^emitFlags != 0:
		r.failAt(start, "emit flags", fmt.Errorf("unknown flags %#x", flags&^emitFlags))
	case flags&EmitValue != 0 && flags&EmitValueIsInput != 0:
		r.failAt(start, "emit flags", errors.New("a value both sent and the input's"))
	}
	if flags&EmitKey != 0 {
		p.Key = r.bytes("emit key")
	}
	if flags&EmitValue != 0 {
		p.Value = r.bytes("emit value")
	}
	p.ValueIsInput = flags&EmitValueIsInput != 0
	if flags&EmitHeaders != 0 {
		p.Headers = r.count("emit header count", minHeaderBytes)
	}
	if r.err != nil {
		*p = PackedEmit{Headers: -1}
		return false
	}
	return true
}

// fail records the first error, at the current offset.
func (r *Reader) fail(what string, err error) { r.failAt(r.off, what, err) }

// failAt records the first error, at offset at.
func (r *Reader) failAt(at int, what string, err error) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: byte %d: %s: %w", ErrMalformed, at, what, err)
	}
}

var errTruncated = errors.New("truncated")

func (r *Reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if !r.advance(n, what) {
		return 0
	}
	return v
}

func (r *Reader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.off:])
	if !r.advance(n, what) {
		return 0
	}
	return v
}

// advance moves past a varint of n bytes, as encoding/binary reports n: 0
// is a truncated varint, below 0 one that overflows 64 bits.
func (r *Reader) advance(n int, what string) bool {
	switch {
	case n == 0:
		r.fail(what, errTruncated)
		return false
	case n < 0:
		r.fail(what, errors.New("varint overflows 64 bits"))
		return false
	}
	r.off += n
	return true
}

func (r *Reader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail(what, errTruncated)
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

// count reads a count of items of at least min bytes each, which must fit
// in what is left of the message.
func (r *Reader) count(what string, min int) int {
	start := r.off
	n := r.uvarint(what)
	if r.err != nil {
		return 0
	}
	if left := len(r.b) - r.off; n > uint64(left/min) {
		r.failAt(start, what, fmt.Errorf("%d items cannot fit in the %d bytes left", n, left))
		return 0
	}
	return int(n)
}

// optCount reads a count written plus one, 0 meaning none at all (-1).
func (r *Reader) optCount(what string, min int) int {
	start := r.off
	n := r.uvarint(what)
	if r.err != nil || n == 0 {
		return -1
	}
	if left := len(r.b) - r.off; n-1 > uint64(left/min) {
		r.failAt(start, what, fmt.Errorf("%d items cannot fit in the %d bytes left", n-1, left))
		return -1
	}
	return int(n - 1)
}

// take returns the next n bytes, capped, of a field that started at
// offset start.
func (r *Reader) take(what string, start int, n uint64) []byte {
	if left := uint64(len(r.b) - r.off); n > left {
		r.failAt(start, what, fmt.Errorf("length %d exceeds the %d bytes left", n, left))
		return nil
	}
	end := r.off + int(n)
	b := r.b[r.off:end:end]
	r.off = end
	return b
}

func (r *Reader) bytes(what string) []byte {
	start := r.off
	n := r.uvarint(what)
	if r.err != nil {
		return nil
	}
	return r.take(what, start, n)
}

func (r *Reader) optBytes(what string) []byte {
	start := r.off
	n := r.uvarint(what)
	if r.err != nil || n == 0 {
		return nil
	}
	return r.take(what, start, n-1)
}

func (r *Reader) istring(what string) string {
	start := r.off
	k := r.uvarint(what)
	if r.err != nil {
		return ""
	}
	if k > 0 {
		if k > uint64(r.n) {
			r.failAt(start, what, fmt.Errorf("interned string %d of %d", k, r.n))
			return ""
		}
		return r.strs[k-1]
	}
	b := r.bytes(what)
	if r.err != nil {
		return ""
	}
	s := string(b)
	if r.n < maxInterned {
		r.strs[r.n] = s
		r.n++
	}
	return s
}
