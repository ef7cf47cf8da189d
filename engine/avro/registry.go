package avro

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/linkedin/goavro/v2"
)

// headerLen is the length of the single-object encoding header: the marker
// 0xC3 0x01 and the 8-byte little-endian schema fingerprint.
const headerLen = 10

// Fingerprint returns the writer schema fingerprint of a single-object
// encoded value (the 8 little-endian bytes after the 0xC3 0x01 marker). It
// fails with an error wrapping ErrNotSingleObject if b is shorter than the
// 10-byte header or does not start with the marker. It does not look at the
// body.
func Fingerprint(b []byte) (uint64, error) {
	if len(b) < headerLen {
		return 0, fmt.Errorf("avro: %w: %d bytes, want at least %d", ErrNotSingleObject, len(b), headerLen)
	}
	if b[0] != 0xC3 || b[1] != 0x01 {
		return 0, fmt.Errorf("avro: %w: marker %#02x %#02x, want 0xc3 0x01", ErrNotSingleObject, b[0], b[1])
	}
	return binary.LittleEndian.Uint64(b[2:headerLen]), nil
}

// Registry holds record schemas by full name (the current version of each)
// and by fingerprint (every version, current or older), and decodes
// single-object encoded values by their writer fingerprint. The zero value is
// an empty registry. All methods are safe for concurrent use; lookups and
// Decode do not take locks.
//
// Besides a schema's Fingerprint (Avro's Parsing Canonical Form, as Java
// computes it), lookups also accept the fingerprint goavro's own
// SingleFromNative writes for the schema, which differs when the schema has
// logical types or nested namespaces, so values from producers that use
// goavro directly still decode. Encode always writes Fingerprint.
type Registry struct {
	mu    sync.Mutex // serialises writers
	state atomic.Pointer[registryState]
}

// registryState is an immutable snapshot, replaced wholesale by Add.
type registryState struct {
	byFingerprint map[uint64]*Schema
	current       map[string]*Schema   // full name -> current version
	byShort       map[string][]*Schema // unqualified name -> current versions
	versions      map[string][]*Schema // full name -> every version, in order added
}

var emptyState = &registryState{}

func (r *Registry) load() *registryState {
	if s := r.state.Load(); s != nil {
		return s
	}
	return emptyState
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// LoadDir builds a registry from the schema files of dir: every dir/*.avsc
// is the current version of its record's full name and every
// dir/versions/*.avsc an older, writer-only version (a missing versions
// directory is fine; other files and directories are ignored). Files are
// added in name order, current ones first. It reports every problem at
// once, joined with errors.Join and each naming its file: unreadable or
// invalid schemas, two current files with one full name, and older versions
// whose records the current version of the same full name cannot read. On
// any error the registry is nil.
func LoadDir(dir string) (*Registry, error) {
	current, err := filepath.Glob(filepath.Join(dir, "*.avsc"))
	if err == nil && len(current) == 0 {
		if _, statErr := os.Stat(dir); statErr != nil {
			return nil, fmt.Errorf("avro: load %s: %w", dir, statErr)
		}
	}
	older, err2 := filepath.Glob(filepath.Join(dir, "versions", "*.avsc"))
	if err := errors.Join(err, err2); err != nil {
		return nil, fmt.Errorf("avro: load %s: %w", dir, err)
	}
	sort.Strings(current)
	sort.Strings(older)

	r := NewRegistry()
	var errs []error
	var olderSchemas []*Schema
	add := func(path string, isCurrent bool) {
		b, err := os.ReadFile(path)
		if err == nil {
			var s *Schema
			s, err = r.add(string(b), isCurrent, path)
			if err == nil && !isCurrent {
				olderSchemas = append(olderSchemas, s)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("avro: %s: %w", path, unprefix(err)))
		}
	}
	for _, path := range current {
		add(path, true)
	}
	for _, path := range older {
		add(path, false)
	}
	st := r.load()
	for _, w := range olderSchemas {
		rd := st.current[w.Name]
		if rd == nil || rd == w {
			continue
		}
		if _, err := rd.planFor(w); err != nil {
			errs = append(errs, fmt.Errorf("avro: %s: current %s (%s) cannot read this version: %w",
				w.source, rd.Name, rd.source, unprefix(err)))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// unprefix drops a leading "avro: " so nested messages read once.
func unprefix(err error) error {
	if msg := err.Error(); strings.HasPrefix(msg, "avro: ") {
		return &prefixless{err: err, msg: msg[len("avro: "):]}
	}
	return err
}

type prefixless struct {
	err error
	msg string
}

func (p *prefixless) Error() string { return p.msg }
func (p *prefixless) Unwrap() error { return p.err }

// Add parses a record schema and registers it by fingerprint and, when
// current is true, as the current version of its full name. Adding a
// schema that only differs from a registered one in docs returns the
// registered Schema (and makes it current if asked and the name has no
// current version yet). It fails with an error wrapping ErrInvalidSchema if
// the JSON is not a valid Avro record schema, or if current is true and
// another schema is already current for the same full name.
//
// Schemas that differ only in attributes the canonical form leaves out
// (logical types, defaults, aliases) share a fingerprint; the first one
// added answers Lookup and decodes as the writer, and Decode still
// projects onto whichever one is the reader.
func (r *Registry) Add(schemaJSON string, current bool) (*Schema, error) {
	return r.add(schemaJSON, current, "")
}

func (r *Registry) add(schemaJSON string, current bool, source string) (*Schema, error) {
	s, err := newSchema(schemaJSON, source)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.load()
	for _, v := range old.versions[s.Name] {
		if v.Fingerprint == s.Fingerprint && v.resolution == s.resolution {
			s = v // the same schema for decoding purposes (docs may differ)
			if !current || old.current[s.Name] == s {
				return s, nil
			}
			break
		}
	}
	if cur := old.current[s.Name]; current && cur != nil {
		from := ""
		if cur.source != "" {
			from = " by " + cur.source
		}
		return nil, fmt.Errorf("avro: %w: a current %s is already registered%s", ErrInvalidSchema, s.Name, from)
	}
	next := &registryState{
		byFingerprint: cloneMap(old.byFingerprint),
		current:       cloneMap(old.current),
		byShort:       cloneMap(old.byShort),
		versions:      cloneMap(old.versions),
	}
	if !slices.Contains(next.versions[s.Name], s) {
		next.versions[s.Name] = append(slices.Clip(next.versions[s.Name]), s)
		for _, fp := range []uint64{s.Fingerprint, s.codec.Rabin} {
			if _, ok := next.byFingerprint[fp]; !ok {
				next.byFingerprint[fp] = s
			}
		}
	}
	if current {
		next.current[s.Name] = s
		short := unqualified(s.Name)
		next.byShort[short] = append(slices.Clip(next.byShort[short]), s)
	}
	r.state.Store(next)
	return s, nil
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func newSchema(schemaJSON, source string) (*Schema, error) {
	root, p, err := parseSchema(schemaJSON)
	if err != nil {
		return nil, fmt.Errorf("avro: %w: %w", ErrInvalidSchema, err)
	}
	codec, err := goavro.NewCodec(schemaJSON)
	if err != nil {
		return nil, fmt.Errorf("avro: %w: %s: %w", ErrInvalidSchema, root.name, err)
	}
	s := &Schema{
		Name:   root.name,
		source: source,
		codec:  codec,
		root:   root,
		scan:   p.scan,
	}
	s.canonical = canonicalForm(root)
	s.resolution = resolutionForm(root)
	s.Fingerprint = rabin([]byte(s.canonical))
	s.header[0], s.header[1] = 0xC3, 0x01
	binary.LittleEndian.PutUint64(s.header[2:], s.Fingerprint)
	for _, f := range root.fields {
		s.fields = append(s.fields, f.pub)
	}
	if s.self, err = newResolver().plan(root, root); err != nil {
		return nil, fmt.Errorf("avro: %w: %s: %w", ErrInvalidSchema, root.name, err)
	}
	if s.encoder, err = newRecordEncoder(root); err != nil {
		return nil, fmt.Errorf("avro: %w: %s: %w", ErrInvalidSchema, root.name, err)
	}
	s.fast = newFastDecoder(root, p)
	return s, nil
}

// Schema returns the current schema registered under name, which is a full
// name ("billing.Transaction") or an unqualified one ("Transaction") that
// only one current schema has. It fails with an error wrapping
// ErrUnknownSchema otherwise.
func (r *Registry) Schema(name string) (*Schema, error) {
	st := r.load()
	if s := st.current[name]; s != nil {
		return s, nil
	}
	if !strings.Contains(name, ".") {
		switch c := st.byShort[name]; len(c) {
		case 1:
			return c[0], nil
		case 0:
		default:
			names := make([]string, len(c))
			for i, s := range c {
				names[i] = s.Name
			}
			sort.Strings(names)
			return nil, fmt.Errorf("avro: %w: %q is ambiguous (%s); use the full name", ErrUnknownSchema, name, strings.Join(names, ", "))
		}
	}
	return nil, fmt.Errorf("avro: %w: %q", ErrUnknownSchema, name)
}

// Names returns the full names of the current schemas, sorted.
func (r *Registry) Names() []string {
	st := r.load()
	names := make([]string, 0, len(st.current))
	for n := range st.current {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Versions returns every registered schema with the given full name,
// current or not, in the order they were added (LoadDir adds the current
// file first). It returns nil for an unknown name.
func (r *Registry) Versions(fullName string) []*Schema {
	return slices.Clone(r.load().versions[fullName])
}

// Lookup returns the schema, current or older, with the given fingerprint,
// or an error wrapping ErrUnknownFingerprint.
func (r *Registry) Lookup(fingerprint uint64) (*Schema, error) {
	if s := r.load().byFingerprint[fingerprint]; s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("avro: %w: %016x", ErrUnknownFingerprint, fingerprint)
}

// Writer returns the registered schema that wrote the single-object encoded
// value b, without decoding the body. Errors wrap ErrNotSingleObject or
// ErrUnknownFingerprint.
func (r *Registry) Writer(b []byte) (*Schema, error) {
	fp, err := Fingerprint(b)
	if err != nil {
		return nil, err
	}
	return r.Lookup(fp)
}

// Decode decodes the single-object encoded value b and returns it as a plain
// record of reader's schema: the writer schema is found by the fingerprint
// in b's header, the body is decoded with it and the result is projected
// onto reader following the Avro resolution rules (reader fields the writer
// lacks take their defaults, writer fields the reader lacks are dropped,
// int/long/float promote, a value is wrapped into or unwrapped from a
// nullable union as needed). A nil reader decodes with the writer schema
// itself. reader need not be registered in r.
//
// The result is a new map owned by the caller; it never aliases b. Errors
// wrap ErrNotSingleObject, ErrUnknownFingerprint, ErrMalformed (the body
// does not decode with the writer schema, including trailing bytes) or
// ErrIncompatible (reader cannot read what this writer wrote). Decode
// never panics on any input.
func (r *Registry) Decode(reader *Schema, b []byte) (map[string]any, error) {
	w, err := r.Writer(b)
	if err != nil {
		return nil, err
	}
	return decodeBody(w, reader, b[headerLen:])
}

// decodeBody decodes a body written with w and projects it onto reader:
// with w's direct decoder when reader is w itself (or nil) and w has one,
// with goavro and the projection plan otherwise.
func decodeBody(w, reader *Schema, body []byte) (map[string]any, error) {
	return decodeBodyWith(w, reader, body, true)
}

// decodeBodyWith is decodeBody; direct false forces the goavro path, for
// tests that compare the two.
func decodeBodyWith(w, reader *Schema, body []byte, direct bool) (rec map[string]any, err error) {
	defer func() {
		// Defence in depth for the "never panics" contract: a bug in goavro
		// or here must cost one record, not the consumer.
		if p := recover(); p != nil {
			rec, err = nil, fmt.Errorf("avro: decode %s: %w: panic: %v", w, ErrMalformed, p)
		}
	}()
	plan := w.self
	if reader != nil && reader != w {
		if plan, err = reader.planFor(w); err != nil {
			return nil, fmt.Errorf("avro: decode %s as %s: %w", w, reader, err)
		}
	}
	if direct && plan == w.self && w.fast != nil {
		if rec, err = w.fast.decode(body); err != nil {
			return nil, fmt.Errorf("avro: decode %s: %w: %w", w, ErrMalformed, err)
		}
		return rec, nil
	}
	if w.scan {
		if err := scanBody(w.root, body); err != nil {
			return nil, fmt.Errorf("avro: decode %s: %w: %w", w, ErrMalformed, err)
		}
	}
	native, rest, err := w.codec.NativeFromBinary(body)
	if err != nil {
		return nil, fmt.Errorf("avro: decode %s: %w: %w", w, ErrMalformed, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("avro: decode %s: %w: %d trailing bytes", w, ErrMalformed, len(rest))
	}
	rec, ok := native.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("avro: decode %s: %w: got %T", w, ErrMalformed, native)
	}
	if plan.noop() {
		return rec, nil
	}
	if rec, err = plan.apply(rec); err != nil {
		return nil, fmt.Errorf("avro: decode %s as %s: %w", w, plan.reader, err)
	}
	return rec, nil
}

// planEntry caches a projection plan, or why there cannot be one.
type planEntry struct {
	plan *recordPlan
	err  error
}

// planFor returns the cached projection of records written with w onto s.
func (s *Schema) planFor(w *Schema) (*recordPlan, error) {
	if e, ok := s.plans.Load(w); ok {
		pe := e.(*planEntry)
		return pe.plan, pe.err
	}
	p, err := newResolver().plan(w.root, s.root)
	e, _ := s.plans.LoadOrStore(w, &planEntry{plan: p, err: err})
	pe := e.(*planEntry)
	return pe.plan, pe.err
}

// Encode returns the single-object encoding of the plain record rec: the
// 0xC3 0x01 marker, s's fingerprint and the Avro binary body. See
// AppendEncode.
func (s *Schema) Encode(rec map[string]any) ([]byte, error) {
	return s.AppendEncode(nil, rec)
}

// AppendEncode appends the single-object encoding of the plain record rec
// to dst and returns the extended slice. rec is not modified. Union values
// are given unwrapped: nil selects the null branch, any other value the
// first non-null branch that accepts its Go type (exact-width numbers
// first). Timestamps accept time.Time or int64 in the schema's unit. A
// missing field takes its default; a missing field without default, a
// field the schema does not have, or a value of the wrong Go type is an
// error wrapping ErrInvalidRecord that names the field. On error dst is
// returned unextended (bytes past its length may have been written).
func (s *Schema) AppendEncode(dst []byte, rec map[string]any) ([]byte, error) {
	native, err := s.encoder.encodeMap(rec)
	if err != nil {
		return dst, fmt.Errorf("avro: encode %s: %w: %w", s.Name, ErrInvalidRecord, err)
	}
	out, err := s.codec.BinaryFromNative(append(dst, s.header[:]...), native)
	if err != nil {
		return dst, fmt.Errorf("avro: encode %s: %w: %w", s.Name, ErrInvalidRecord, err)
	}
	return out, nil
}
