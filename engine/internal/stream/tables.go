package stream

import (
	"bytes"
	"encoding/json"
	"fmt"
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
}

// Changelogs returns the changelog topic of every table kept here.
func (t *Tables) Changelogs() map[string]string {
	out := map[string]string{}
	if t.Repartitioned != nil {
		out[t.Repartitioned.Name] = t.Repartitioned.Changelog(t.App)
		return out
	}
	for _, d := range t.Defs {
		if !d.Repartitioned() {
			out[d.Name] = d.Changelog(t.App)
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

// batchState is the view of one partition's tables during one batch: the
// store with the batch's own writes on top.
type batchState struct {
	t         *Tables
	partition int32
	pending   map[string]map[string][]byte // table -> key -> value
	order     map[string][]string          // table -> keys in first-write order
	undo      []undoEntry                  // the current record's writes
}

// undoEntry restores one pending value if the record fails half-way.
type undoEntry struct {
	table, key string
	prev       []byte
	had, first bool
}

func newBatchState(t *Tables, partition int32) *batchState {
	return &batchState{t: t, partition: partition, pending: map[string]map[string][]byte{}, order: map[string][]string{}}
}

func (b *batchState) get(table string, key []byte) ([]byte, bool, error) {
	if m, ok := b.pending[table]; ok {
		if v, ok := m[string(key)]; ok {
			return v, v != nil, nil
		}
	}
	return b.t.Store.Get(table, b.partition, key)
}

func (b *batchState) set(table string, key, value []byte) {
	m, ok := b.pending[table]
	if !ok {
		m = map[string][]byte{}
		b.pending[table] = m
	}
	prev, had := m[string(key)]
	b.undo = append(b.undo, undoEntry{table: table, key: string(key), prev: prev, had: had, first: !had})
	if !had {
		b.order[table] = append(b.order[table], string(key))
	}
	m[string(key)] = value
}

// rollback forgets the writes made since the last commitRecord.
func (b *batchState) rollback() {
	for i := len(b.undo) - 1; i >= 0; i-- {
		u := b.undo[i]
		if u.had {
			b.pending[u.table][u.key] = u.prev
			continue
		}
		delete(b.pending[u.table], u.key)
		keys := b.order[u.table]
		b.order[u.table] = keys[:len(keys)-1]
	}
	b.undo = b.undo[:0]
}

// commitRecord keeps the writes made since the last commitRecord.
func (b *batchState) commitRecord() { b.undo = b.undo[:0] }

// writes returns the batch's changes, per table.
func (b *batchState) writes() []StateWrite {
	var out []StateWrite
	for table, keys := range b.order {
		w := StateWrite{Table: table, Partition: b.partition}
		for _, k := range keys {
			w.Writes = append(w.Writes, state.Write{Key: []byte(k), Value: b.pending[table][k]})
		}
		out = append(out, w)
	}
	return out
}

// update applies one record to every table and returns the records to
// produce: changelog records pinned to the partition, repartition records
// keyed by group.
func (b *batchState) update(rec map[string]any, key []byte, ts time.Time) ([]Output, error) {
	outs, err := b.updateAll(rec, key, ts)
	if err != nil {
		b.rollback()
		return nil, err
	}
	b.commitRecord()
	return outs, nil
}

func (b *batchState) updateAll(rec map[string]any, key []byte, ts time.Time) ([]Output, error) {
	var outs []Output
	olds := map[string]map[string]any{}
	for _, d := range b.t.Defs {
		var changes []keyedChange
		var err error
		switch {
		case d.Kind == state.Latest:
			var o Output
			o, olds[d.Name], err = b.updateLatest(d, rec, key, ts)
			outs = append(outs, o)
		case d.From != "":
			changes, err = fromChanges(d, olds[d.From], d.Project(rec), key, ts)
		default:
			changes, err = fromChanges(d, nil, rec, key, ts)
		}
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", d.Name, err)
		}
		for _, c := range changes {
			o, err := b.route(d, c)
			if err != nil {
				return nil, fmt.Errorf("table %s: %w", d.Name, err)
			}
			outs = append(outs, o)
		}
	}
	return outs, nil
}

// updateLatest stores the record's projection and returns its changelog
// record and the previous value (nil when none).
func (b *batchState) updateLatest(d state.Def, rec map[string]any, key []byte, ts time.Time) (Output, map[string]any, error) {
	prevRaw, ok, err := b.get(d.Name, key)
	if err != nil {
		return Output{}, nil, err
	}
	var prev map[string]any
	if ok {
		if prev, err = decodeJSON(prevRaw); err != nil {
			return Output{}, nil, fmt.Errorf("stored value of %q: %w", key, err)
		}
	}
	v, err := json.Marshal(d.Project(rec))
	if err != nil {
		return Output{}, nil, err
	}
	b.set(d.Name, key, v)
	return b.changelog(d, key, v, ts), prev, nil
}

func (b *batchState) changelog(d state.Def, key, value []byte, ts time.Time) Output {
	return Output{Topic: d.Changelog(b.t.App), Key: key, Value: value, Timestamp: ts, Stage: "table:" + d.Name, Partition: b.partition, Pinned: true}
}

// keyedChange is a change to the group named key.
type keyedChange struct {
	key    string
	change state.Change
	ts     time.Time
}

// fromChanges returns the changes a record makes to an aggregate: with
// old set (a From table's previous value), its contribution is subtracted.
func fromChanges(d state.Def, old, rec map[string]any, key []byte, ts time.Time) ([]keyedChange, error) {
	var out []keyedChange
	if old != nil {
		g, c, err := d.Contribution(old, key, ts, -1)
		if err != nil {
			return nil, err
		}
		out = append(out, keyedChange{g, c, ts})
	}
	g, c, err := d.Contribution(rec, key, ts, +1)
	if err != nil {
		return nil, err
	}
	if len(out) == 1 && out[0].key == g && sameWindow(out[0].change, c) {
		// One group: merge the subtraction and the addition.
		out[0].change.Deltas = append(out[0].change.Deltas, c.Deltas...)
		return out, nil
	}
	return append(out, keyedChange{g, c, ts}), nil
}

func sameWindow(a, b state.Change) bool {
	if a.WindowStart == nil || b.WindowStart == nil {
		return a.WindowStart == b.WindowStart
	}
	return a.WindowStart.Equal(*b.WindowStart)
}

// route sends a change to the repartition topic, or applies it here when
// the table is keyed like its input.
func (b *batchState) route(d state.Def, c keyedChange) (Output, error) {
	if d.Repartitioned() {
		v, err := json.Marshal(c.change)
		if err != nil {
			return Output{}, err
		}
		return Output{Topic: d.Repartition(b.t.App), Key: []byte(c.key), Value: v, Timestamp: c.ts, Stage: "table:" + d.Name}, nil
	}
	return b.aggregate(d, []byte(c.key), c.change, c.ts)
}

// aggregate adds change to the group's stored value.
func (b *batchState) aggregate(d state.Def, key []byte, change state.Change, ts time.Time) (Output, error) {
	var v state.AggValue
	raw, ok, err := b.get(d.Name, key)
	if err != nil {
		return Output{}, err
	}
	if ok {
		if err := json.Unmarshal(raw, &v); err != nil {
			return Output{}, fmt.Errorf("stored value of %q: %w", key, err)
		}
	}
	out, err := json.Marshal(v.Apply(change))
	if err != nil {
		return Output{}, err
	}
	b.set(d.Name, key, out)
	return b.changelog(d, key, out, ts), nil
}

// applyRepartitioned aggregates one repartition record.
func (b *batchState) applyRepartitioned(value, key []byte, ts time.Time) (Output, error) {
	var c state.Change
	if err := json.Unmarshal(value, &c); err != nil {
		return Output{}, fmt.Errorf("repartition record: %w", err)
	}
	o, err := b.aggregate(*b.t.Repartitioned, key, c, ts)
	b.commitRecord()
	return o, err
}

func decodeJSON(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	err := dec.Decode(&m)
	return m, err
}
