package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"
)

// Kind is a table's kind.
type Kind string

// The table kinds.
const (
	// Latest keeps the latest value per key (a KTable).
	Latest Kind = "latest"
	// Count counts records per group.
	Count Kind = "count"
	// Aggregate counts records and sums a field per group.
	Aggregate Kind = "aggregate"
)

// Def declares a table.
type Def struct {
	// Name is unique per application.
	Name string
	// Kind is latest, count or aggregate.
	Kind Kind
	// Fields are the record fields a latest table keeps; empty keeps all.
	Fields []string
	// GroupBy is the field whose value keys a count or aggregate; empty
	// groups by the record key. A field other than the record key re-keys
	// the records through a repartition topic.
	GroupBy string
	// By are fields whose values split a group's value into sub-groups,
	// e.g. status and currency.
	By []string
	// Sum is the integer field an aggregate sums.
	Sum string
	// From names a latest table of the same pipeline whose current values
	// are aggregated: a change subtracts the old value's contribution and
	// adds the new one (Kafka Streams' KTable aggregate). Empty aggregates
	// the record stream.
	From string
	// Window, when positive, keys groups by tumbling windows of this size.
	Window time.Duration
	// TimeField is the timestamp field windows use; empty uses the
	// record's Kafka timestamp.
	TimeField string
	// Version is a latest table's version field (a timestamp or an
	// integer): a record whose version is older than the stored row's
	// changes nothing, in the table or in the aggregates of it, so that
	// records of one key from several producers may arrive out of order.
	// Empty: the last record to arrive wins.
	Version string
	// SourceChangelog restores a latest table from its pipeline's source
	// topic, as Kafka Streams does for a source KTable with
	// topology.optimization=reuse.ktable.source.topics: the table writes
	// no changelog, and a restore replays the source records (through the
	// pipeline's filters) from the checkpoint up to the consumer group's
	// committed offset. The source topic must keep its records.
	SourceChangelog bool
}

// Repartitioned reports whether the table is keyed by something other than
// the source record key, and so needs a repartition topic.
func (d Def) Repartitioned() bool { return d.Kind != Latest && d.GroupBy != "" }

// Changelog is the name of the compacted topic backing the table (a table
// with SourceChangelog has none).
func (d Def) Changelog(app string) string { return app + "-" + d.Name + "-changelog" }

// Repartition is the topic re-keying the table's input.
func (d Def) Repartition(app string) string { return app + "-" + d.Name + "-repartition" }

// Group is one sub-group's totals.
type Group struct {
	Count int64 `json:"count"`
	Sum   int64 `json:"sum,omitempty"`
}

// AggValue is the value of a count or aggregate table. Sum is set only for
// tables without By: sub-groups may be currencies, which never add up.
type AggValue struct {
	Count       int64            `json:"count"`
	Sum         int64            `json:"sum,omitempty"`
	Groups      map[string]Group `json:"groups,omitempty"`
	WindowStart *time.Time       `json:"window_start,omitempty"`
	WindowEnd   *time.Time       `json:"window_end,omitempty"`
}

// Clone returns a copy of v that shares no map with it.
func (v AggValue) Clone() AggValue {
	if v.Groups != nil {
		v.Groups = maps.Clone(v.Groups)
	}
	return v
}

// Delta is a change to one group of an aggregate.
type Delta struct {
	// By is the sub-group ("" without By fields).
	By    string `json:"by,omitempty"`
	Count int64  `json:"count"`
	Sum   int64  `json:"sum,omitempty"`
}

// Change is the repartitioned input of an aggregate: deltas to the group
// named by the record key.
type Change struct {
	Deltas      []Delta    `json:"deltas"`
	WindowStart *time.Time `json:"window_start,omitempty"`
	WindowEnd   *time.Time `json:"window_end,omitempty"`
}

// Apply adds c's deltas to v and returns the result; a sub-group whose
// count reaches zero is removed.
func (v AggValue) Apply(c Change) AggValue {
	if v.Groups == nil {
		v.Groups = map[string]Group{}
	}
	for _, d := range c.Deltas {
		v.Count += d.Count
		if d.By == "" {
			// Without sub-groups the sum is the group's own; with them it
			// is kept per sub-group only, since they may be currencies.
			v.Sum += d.Sum
			continue
		}
		g := v.Groups[d.By]
		g.Count += d.Count
		g.Sum += d.Sum
		if g.Count == 0 && g.Sum == 0 {
			delete(v.Groups, d.By)
		} else {
			v.Groups[d.By] = g
		}
	}
	if v.WindowStart == nil {
		v.WindowStart, v.WindowEnd = c.WindowStart, c.WindowEnd
	}
	return v
}

// ErrField reports a record that lacks a field a table needs.
var ErrField = errors.New("state: field")

// Contribution returns the delta rec adds to its group, the group key, and
// the window, for a count or aggregate table. sign is +1 to add, -1 to
// subtract (the old value of a From table). key is the record key.
func (d Def) Contribution(rec map[string]any, key []byte, ts time.Time, sign int64) (string, Change, error) {
	group := string(key)
	if d.GroupBy != "" {
		s, err := fieldString(rec, d.GroupBy)
		if err != nil {
			return "", Change{}, err
		}
		group = s
	}
	var by []string
	for _, f := range d.By {
		s, err := fieldString(rec, f)
		if err != nil {
			return "", Change{}, err
		}
		by = append(by, s)
	}
	delta := Delta{By: strings.Join(by, "|"), Count: sign}
	if d.Kind == Aggregate && d.Sum != "" {
		n, err := fieldInt(rec, d.Sum)
		if err != nil {
			return "", Change{}, err
		}
		delta.Sum = sign * n
	}
	c := Change{Deltas: []Delta{delta}}
	if d.Window > 0 {
		t := ts
		if d.TimeField != "" {
			var err error
			if t, err = fieldTime(rec, d.TimeField); err != nil {
				return "", Change{}, err
			}
		}
		start := t.UTC().Truncate(d.Window)
		end := start.Add(d.Window)
		c.WindowStart, c.WindowEnd = &start, &end
		group += "@" + start.Format(time.RFC3339)
	}
	return group, c, nil
}

func fieldString(rec map[string]any, f string) (string, error) {
	switch v := rec[f].(type) {
	case string:
		return v, nil
	case nil:
		return "", fmt.Errorf("%w %q is missing or null", ErrField, f)
	case int64:
		return strconv.FormatInt(v, 10), nil
	case int32:
		return strconv.FormatInt(int64(v), 10), nil
	case bool:
		return strconv.FormatBool(v), nil
	default:
		return fmt.Sprint(v), nil
	}
}

func fieldInt(rec map[string]any, f string) (int64, error) {
	switch v := rec[f].(type) {
	case int64:
		return v, nil
	case int32:
		return int64(v), nil
	case int:
		return int64(v), nil
	case float64: // from JSON
		return int64(v), nil
	case json.Number:
		return v.Int64()
	default:
		return 0, fmt.Errorf("%w %q is not an integer (%T)", ErrField, f, v)
	}
}

func fieldTime(rec map[string]any, f string) (time.Time, error) {
	switch v := rec[f].(type) {
	case time.Time:
		return v, nil
	case int64:
		return time.UnixMilli(v), nil
	case string:
		return time.Parse(time.RFC3339Nano, v)
	default:
		return time.Time{}, fmt.Errorf("%w %q is not a timestamp (%T)", ErrField, f, v)
	}
}

// Project returns the fields of rec a latest table keeps.
func (d Def) Project(rec map[string]any) map[string]any {
	if len(d.Fields) == 0 {
		return rec
	}
	out := make(map[string]any, len(d.Fields))
	for _, f := range d.Fields {
		out[f] = rec[f]
	}
	return out
}
