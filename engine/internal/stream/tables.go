package stream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/billing-engine/billing/engine/internal/state"
)

// Tables keeps a pipeline's tables: it turns each record into table
// updates, changelog records and repartition records.
type Tables struct {
	// App is the application id, the prefix of internal topics.
	App string
	// Store is the local state.
	Store *state.Store
	// Defs are the tables, in declaration order: a From table comes after
	// the latest table it aggregates.
	Defs []state.Def
	// Repartitioned, when set, makes this the aggregating side of one
	// repartitioned table: records are state.Change values keyed by group.
	Repartitioned *state.Def

	mu     sync.Mutex
	caches map[int32]*partCache

	infoOnce sync.Once
	info     map[string]*tableInfo
	// whole is set when every table is a latest table that keeps each
	// key's last record whole (see needsOld): a record's update is then
	// only a map assignment per table.
	whole bool
}

// tableInfo is what the tables' batches use of each table, computed once.
type tableInfo struct {
	needsOld  bool     // see needsOld
	changelog string   // its changelog topic ("" when source)
	source    bool     // restored from the source (state.Def.SourceChangelog)
	stage     string   // its outputs' stage name, for metrics
	fields    []string // a latest table's fields, sorted (nil: all)
}

// partCache holds a partition's committed values, decoded, so hot keys
// (a client's aggregates, a transaction billed moments after it was
// approved) are not read and parsed from the store for every batch. It
// keeps two generations of at most maxCached values each: when the current
// one is full it becomes the previous one and the oldest is dropped, so
// memory stays bounded and the recent values stay. Only the goroutine
// processing the partition uses it.
type partCache struct {
	cur, prev map[tableKey]any // map[string]any row, or state.AggValue
}

// maxCached bounds a generation of a partition's cache. A decoded row
// takes about 1 KiB, so a partition's cache stays under about 10 MiB.
const maxCached = 5_000

func (c *partCache) get(k tableKey) (any, bool) {
	if v, ok := c.cur[k]; ok {
		return v, true
	}
	v, ok := c.prev[k]
	return v, ok
}

func (c *partCache) put(k tableKey, v any) {
	if _, ok := c.cur[k]; !ok && len(c.cur) >= maxCached {
		c.prev, c.cur = c.cur, make(map[tableKey]any, maxCached)
	}
	c.cur[k] = v
}

func (t *Tables) cache(p int32) *partCache {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.caches == nil {
		t.caches = map[int32]*partCache{}
	}
	c := t.caches[p]
	if c == nil {
		c = &partCache{cur: map[tableKey]any{}}
		t.caches[p] = c
	}
	return c
}

// dropCache forgets partition p's cached values (before a restore).
func (t *Tables) dropCache(p int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.caches, p)
}

// Changelogs returns the changelog topic of every table kept here that
// has one (a table restored from its source has none).
func (t *Tables) Changelogs() map[string]string {
	out := map[string]string{}
	if t.Repartitioned != nil {
		out[t.Repartitioned.Name] = t.Repartitioned.Changelog(t.App)
		return out
	}
	for _, d := range t.Defs {
		if !d.Repartitioned() && !d.SourceChangelog {
			out[d.Name] = d.Changelog(t.App)
		}
	}
	return out
}

// Names returns the name of every table kept here, in declaration order.
func (t *Tables) Names() []string {
	if t.Repartitioned != nil {
		return []string{t.Repartitioned.Name}
	}
	var out []string
	for _, d := range t.Defs {
		if !d.Repartitioned() {
			out = append(out, d.Name)
		}
	}
	return out
}

// sourceDefs returns the tables restored from the source topic.
func (t *Tables) sourceDefs() []state.Def {
	var out []state.Def
	for _, d := range t.Defs {
		if d.SourceChangelog {
			out = append(out, d)
		}
	}
	return out
}

// StateWrite is a table change to apply after its transaction commits.
type StateWrite struct {
	Table     string
	Partition int32
	Writes    []state.Write
}

// batchState is one partition's tables during one batch: values read from
// the store on first use and kept decoded, updated in memory, and written
// once per key at the end of the batch (one changelog record per key per
// batch, as Kafka Streams' record cache does).
type batchState struct {
	t         *Tables
	partition int32
	latest    map[string]map[string]map[string]any // table -> key -> row (nil: absent)
	aggs      map[string]map[string]*state.AggValue
	order     []tableKey // first-touch order of dirty keys
	dirty     map[tableKey]bool
	lastTS    time.Time
	cache     *partCache
	sizeHint  int // the batch's records, to size its maps
	// parts are the batch's repartition records, one per aggregate and
	// group: the records of a batch that touch one group are combined
	// into one change, since applying their deltas one by one or summed
	// gives the same value.
	parts     map[tableKey]*repartPart
	partOrder []tableKey
}

// repartPart is the combined change of a batch to one group of a
// repartitioned aggregate.
type repartPart struct {
	def    state.Def
	change state.Change
	ts     time.Time // of the last record combined
}

type tableKey struct{ table, key string }

func newBatchState(t *Tables, partition int32, records int) *batchState {
	return &batchState{
		t: t, partition: partition, sizeHint: records, order: make([]tableKey, 0, records*len(t.Defs)),
		latest: map[string]map[string]map[string]any{},
		aggs:   map[string]map[string]*state.AggValue{},
		dirty:  map[tableKey]bool{},
		cache:  t.cache(partition),
	}
}

// committed moves the batch's values into the partition cache: call it
// only once the batch's transaction committed.
func (b *batchState) committed() {
	for _, k := range b.order {
		if r, ok := b.latest[k.table][k.key]; ok {
			if b.t.needsOld(k.table) { // else nothing reads it back
				detach(r)
				b.cache.put(k, r)
			}
		} else {
			b.cache.put(k, *b.aggs[k.table][k.key])
		}
	}
}

// detach gives each string in row (and in the maps and slices it holds)
// memory of its own, in place, so that a cached row keeps only its own
// values: the Avro decoder's strings share one copy of the whole record,
// fields the table dropped included.
func detach(row map[string]any) {
	for k, v := range row {
		row[k] = detached(v)
	}
}

func detached(v any) any {
	switch v := v.(type) {
	case string:
		return strings.Clone(v)
	case map[string]any:
		detach(v)
	case []any:
		for i, e := range v {
			v[i] = detached(e)
		}
	}
	return v
}

func (b *batchState) touch(table, key string) {
	k := tableKey{table, key}
	if !b.dirty[k] {
		b.dirty[k] = true
		b.order = append(b.order, k)
	}
}

// row returns the latest table's row for key (nil when absent).
func (b *batchState) row(table, key string) (map[string]any, error) {
	m := b.latest[table]
	if m == nil {
		m = map[string]map[string]any{}
		b.latest[table] = m
	}
	if r, ok := m[key]; ok {
		return r, nil
	}
	if c, ok := b.cache.get(tableKey{table, key}); ok {
		r, _ := c.(map[string]any)
		m[key] = r
		return r, nil
	}
	raw, ok, err := b.t.Store.Get(table, b.partition, []byte(key))
	if err != nil || !ok {
		m[key] = nil
		return nil, err
	}
	r, err := decodeJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("stored value of %q: %w", key, err)
	}
	m[key] = r
	return r, nil
}

// agg returns the aggregate's value for key, zero when absent.
func (b *batchState) agg(table, key string) (*state.AggValue, error) {
	m := b.aggs[table]
	if m == nil {
		m = map[string]*state.AggValue{}
		b.aggs[table] = m
	}
	if v, ok := m[key]; ok {
		return v, nil
	}
	if c, ok := b.cache.get(tableKey{table, key}); ok {
		v := c.(state.AggValue).Clone()
		m[key] = &v
		return &v, nil
	}
	v := &state.AggValue{}
	raw, ok, err := b.t.Store.Get(table, b.partition, []byte(key))
	if err != nil {
		return nil, err
	}
	if ok {
		if err := json.Unmarshal(raw, v); err != nil {
			return nil, fmt.Errorf("stored value of %q: %w", key, err)
		}
	}
	m[key] = v
	return v, nil
}

// pendingChange is one record's effect on one table, computed before any
// table changes, so a record that fails changes nothing.
type pendingChange struct {
	def    state.Def
	row    map[string]any // latest
	group  string         // aggregates
	change state.Change
}

// update applies one record to every table and returns the repartition
// records it produces.
func (b *batchState) update(rec map[string]any, key []byte, ts time.Time) ([]Output, error) {
	if b.t.keptWhole() {
		b.keepWhole(rec, string(key))
		b.lastTS = ts
		return nil, nil
	}
	changes, err := b.plan(rec, string(key), ts)
	if err != nil {
		return nil, err
	}
	var outs []Output
	for _, c := range changes {
		switch {
		case c.def.Kind == state.Latest:
			m := b.latest[c.def.Name]
			if m == nil {
				m = map[string]map[string]any{}
				b.latest[c.def.Name] = m
			}
			m[string(key)] = c.row
			b.touch(c.def.Name, string(key))
		case c.def.Repartitioned():
			b.repartition(c.def, c.group, c.change, ts)
		default:
			if err := b.apply(c.def.Name, c.group, c.change); err != nil {
				return nil, err
			}
		}
	}
	b.lastTS = ts
	return outs, nil
}

// keptWhole reports whether every table keeps each key's last record
// whole.
func (t *Tables) keptWhole() bool {
	t.infoOnce.Do(t.computeInfo)
	return t.whole
}

// keepWhole makes rec the last record of key in every table, when every
// table keeps it whole: nothing reads a table's rows back then, so a key
// in a table's map is a key the batch changed, and the dirty set is not
// needed to find them.
func (b *batchState) keepWhole(rec map[string]any, key string) {
	for i := range b.t.Defs {
		name := b.t.Defs[i].Name
		m := b.latest[name]
		if m == nil {
			m = make(map[string]map[string]any, b.sizeHint)
			b.latest[name] = m
		}
		if _, seen := m[key]; !seen {
			b.order = append(b.order, tableKey{name, key})
		}
		m[key] = rec
	}
}

// repartition adds change to the batch's repartition record for group.
func (b *batchState) repartition(d state.Def, group string, change state.Change, ts time.Time) {
	k := tableKey{d.Name, group}
	p := b.parts[k]
	if p == nil {
		if b.parts == nil {
			b.parts = map[tableKey]*repartPart{}
		}
		p = &repartPart{def: d, change: state.Change{WindowStart: change.WindowStart, WindowEnd: change.WindowEnd}}
		b.parts[k] = p
		b.partOrder = append(b.partOrder, k)
	}
	p.change.Deltas = addDeltas(p.change.Deltas, change.Deltas)
	p.ts = ts
}

// addDeltas adds more to deltas, one delta per sub-group; a sub-group
// that nets to nothing is left out (adding zero changes no value).
func addDeltas(deltas, more []state.Delta) []state.Delta {
	for _, m := range more {
		i := slices.IndexFunc(deltas, func(d state.Delta) bool { return d.By == m.By })
		if i < 0 {
			if m.Count != 0 || m.Sum != 0 {
				deltas = append(deltas, m)
			}
			continue
		}
		deltas[i].Count += m.Count
		deltas[i].Sum += m.Sum
		if deltas[i].Count == 0 && deltas[i].Sum == 0 {
			deltas = slices.Delete(deltas, i, i+1)
		}
	}
	return deltas
}

// needsOld reports whether a record's update of the latest table named
// table needs the row it replaces: to compare versions, or for an
// aggregate of it to subtract the old row's contribution. Without, the
// store is not read, the partition cache does not keep its rows, and the
// batch keeps the latest record of each key whole, to encode the table's
// fields of it when it flushes.
func (t *Tables) needsOld(table string) bool { return t.tableInfo(table).needsOld }

// tableInfo returns the table's tableInfo (for a table not declared here,
// one without changelog).
func (t *Tables) tableInfo(table string) *tableInfo {
	t.infoOnce.Do(t.computeInfo)
	if i := t.info[table]; i != nil {
		return i
	}
	return &noTableInfo
}

// noTableInfo is the tableInfo of a table not declared here.
var noTableInfo tableInfo

// computeInfo fills t.info and t.whole.
func (t *Tables) computeInfo() {
	t.info = map[string]*tableInfo{}
	defs := t.Defs
	if t.Repartitioned != nil {
		defs = append(defs[:len(defs):len(defs)], *t.Repartitioned)
	}
	for _, d := range defs {
		t.info[d.Name] = &tableInfo{stage: "table:" + d.Name, fields: d.SortedFields(), source: d.SourceChangelog}
		if !d.SourceChangelog {
			t.info[d.Name].changelog = d.Changelog(t.App)
		}
	}
	for _, d := range defs {
		if d.Kind == state.Latest && d.Version != "" {
			t.info[d.Name].needsOld = true
		}
		if i := t.info[d.From]; d.From != "" && i != nil {
			i.needsOld = true
		}
	}
	t.whole = t.Repartitioned == nil
	for _, d := range t.Defs {
		if d.Kind != state.Latest || t.info[d.Name].needsOld {
			t.whole = false
		}
	}
}

// plan computes a record's changes to every table without making them.
func (b *batchState) plan(rec map[string]any, key string, ts time.Time) ([]pendingChange, error) {
	var out []pendingChange
	olds := map[string]map[string]any{}
	stale := map[string]bool{}
	for _, d := range b.t.Defs {
		if d.Kind == state.Latest {
			if !b.t.needsOld(d.Name) {
				// Kept whole; flush encodes the table's fields of it.
				out = append(out, pendingChange{def: d, row: rec})
				continue
			}
			old, err := b.row(d.Name, key)
			if err != nil {
				return nil, fmt.Errorf("table %s: %w", d.Name, err)
			}
			if d.Version != "" && old != nil && olderVersion(rec[d.Version], old[d.Version]) {
				stale[d.Name] = true
				continue
			}
			olds[d.Name] = old
			out = append(out, pendingChange{def: d, row: d.Project(rec)})
			continue
		}
		var old map[string]any
		if d.From != "" {
			if stale[d.From] {
				continue // the row it aggregates did not change
			}
			old = olds[d.From]
		}
		cs, err := contributions(d, old, rec, []byte(key), ts)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", d.Name, err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

// contributions returns the changes a record makes to an aggregate: with
// old set (a From table's previous row), its contribution is subtracted.
func contributions(d state.Def, old, rec map[string]any, key []byte, ts time.Time) ([]pendingChange, error) {
	var out []pendingChange
	if old != nil {
		g, c, err := d.Contribution(old, key, ts, -1)
		if err != nil {
			return nil, err
		}
		out = append(out, pendingChange{def: d, group: g, change: c})
	}
	g, c, err := d.Contribution(rec, key, ts, +1)
	if err != nil {
		return nil, err
	}
	if len(out) == 1 && out[0].group == g && sameWindow(out[0].change, c) {
		out[0].change.Deltas = append(out[0].change.Deltas, c.Deltas...)
		return out, nil
	}
	return append(out, pendingChange{def: d, group: g, change: c}), nil
}

func sameWindow(a, b state.Change) bool {
	if a.WindowStart == nil || b.WindowStart == nil {
		return a.WindowStart == b.WindowStart
	}
	return a.WindowStart.Equal(*b.WindowStart)
}

// apply adds change to the aggregate's value for group.
func (b *batchState) apply(table, group string, change state.Change) error {
	v, err := b.agg(table, group)
	if err != nil {
		return err
	}
	*v = v.Apply(change)
	b.touch(table, group)
	return nil
}

// applyRepartitioned aggregates one repartition record.
func (b *batchState) applyRepartitioned(value, key []byte, ts time.Time) error {
	var c state.Change
	if err := json.Unmarshal(value, &c); err != nil {
		return fmt.Errorf("repartition record: %w", err)
	}
	b.lastTS = ts
	return b.apply(b.t.Repartitioned.Name, string(key), c)
}

// flush appends to outs the batch's repartition records (one per aggregate
// and group) and its changelog records (one per changed key, pinned to the
// partition; none for a table restored from its source), and returns them
// with its store writes. Their keys and values are in the buffer *buf0
// (taken for them, see take; *buf0 is left holding it as it grew), or in a
// new one when buf0 is nil.
func (b *batchState) flush(outs []Output, buf0 *[]byte) ([]Output, []StateWrite, error) {
	for _, k := range b.partOrder {
		p := b.parts[k]
		v, err := json.Marshal(p.change)
		if err != nil {
			return nil, nil, fmt.Errorf("table %s: %w", k.table, err)
		}
		outs = append(outs, Output{Topic: p.def.Repartition(b.t.App), Key: []byte(k.key), Value: v, Timestamp: p.ts, Stage: "table:" + k.table})
	}
	byTable := map[string]int{} // index in writes
	var writes []StateWrite
	// The batch's values and keys share one buffer (a slice of it stays
	// valid when a later append moves the buffer).
	var buf []byte
	if buf0 != nil {
		buf = take(buf0, 300*len(b.order))
	} else {
		buf = make([]byte, 0, 300*len(b.order))
	}
	for i, k := range b.order {
		yieldEvery(i)
		info := b.t.tableInfo(k.table)
		start := len(buf)
		var err error
		if r, ok := b.latest[k.table][k.key]; ok {
			if info.fields != nil && !info.needsOld {
				buf, err = state.AppendFields(buf, r, info.fields) // r is the whole record
			} else {
				buf, err = state.AppendRow(buf, r)
			}
		} else {
			buf, err = b.aggs[k.table][k.key].AppendJSON(buf)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("table %s: %w", k.table, err)
		}
		raw := buf[start:len(buf):len(buf)]
		start = len(buf)
		buf = append(buf, k.key...)
		key := buf[start:len(buf):len(buf)]
		if !info.source {
			outs = append(outs, Output{
				Topic: info.changelog, Key: key, Value: raw,
				Timestamp: b.lastTS, Stage: info.stage, Partition: b.partition, Pinned: true,
			})
		}
		j, ok := byTable[k.table]
		if !ok {
			j = len(writes)
			writes = append(writes, StateWrite{Table: k.table, Partition: b.partition, Writes: make([]state.Write, 0, len(b.order))})
			byTable[k.table] = j
		}
		writes[j].Writes = append(writes[j].Writes, state.Write{Key: key, Value: raw})
	}
	if buf0 != nil {
		*buf0 = buf[:0] // grown by appends past what take sized
	}
	return outs, writes, nil
}

func decodeJSON(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	err := dec.Decode(&m)
	return m, err
}

// olderVersion reports whether version a is older than b. Versions are
// timestamps or integers; a stored row's timestamp has been through JSON
// and is an RFC 3339 string, an integer a json.Number. A missing or
// unreadable version is never older, and nothing is older than one.
func olderVersion(a, b any) bool {
	if x, ok := versionTime(a); ok {
		y, ok := versionTime(b)
		return ok && x.Before(y)
	}
	x, okA := versionInt(a)
	y, okB := versionInt(b)
	return okA && okB && x < y
}

func versionTime(v any) (time.Time, bool) {
	switch v := v.(type) {
	case time.Time:
		return v, true
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		return t, err == nil
	}
	return time.Time{}, false
}

func versionInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case int:
		return int64(v), true
	case int32:
		return int64(v), true
	case json.Number:
		n, err := v.Int64()
		return n, err == nil
	}
	return 0, false
}
