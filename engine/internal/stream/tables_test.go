package stream

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/internal/state"
)

func openStore(t *testing.T) *state.Store {
	t.Helper()
	s, err := state.Open("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A latest table that nothing aggregates keeps the last row per key of a
// batch, written once, over what the store held.
func TestLatestTableWithoutAggregates(t *testing.T) {
	store := openStore(t)
	def := state.Def{Name: "status", Kind: state.Latest, Fields: []string{"id", "status"}}
	if err := store.Apply("status", 3, []state.Write{{Key: []byte("t1"), Value: []byte(`{"id":"t1","status":"OLD"}`)}}, &state.Position{}); err != nil {
		t.Fatal(err)
	}
	tables := &Tables{App: "app", Store: store, Defs: []state.Def{def}}
	if tables.needsOld(def.Name) {
		t.Fatal("needsOld: a latest table nothing aggregates and without a version reads no old row")
	}
	bs := newBatchState(tables, 3, 8)
	ts := time.Unix(1_700_000_000, 0)
	for _, r := range []struct{ id, status string }{{"t1", "APPROVED"}, {"t2", "DECLINED"}, {"t1", "BILLED"}} {
		outs, err := bs.update(map[string]any{"id": r.id, "status": r.status, "other": 1}, []byte(r.id), ts)
		if err != nil || len(outs) != 0 {
			t.Fatalf("update %v: %v, %d repartition records", r, err, len(outs))
		}
	}
	outs, writes, err := bs.flush(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 2 {
		t.Errorf("%d changelog records, want one per key (2)", len(outs))
	}
	got := map[string]string{}
	for _, o := range outs {
		if o.Topic != "app-status-changelog" || !o.Pinned || o.Partition != 3 {
			t.Errorf("changelog record %+v: want app-status-changelog, pinned to partition 3", o)
		}
		got[string(o.Key)] = string(o.Value)
	}
	want := map[string]string{"t1": `{"id":"t1","status":"BILLED"}`, "t2": `{"id":"t2","status":"DECLINED"}`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("changelog = %v, want %v", got, want)
	}
	if len(writes) != 1 || len(writes[0].Writes) != 2 {
		t.Errorf("store writes = %+v, want one table with two keys", writes)
	}
}

// The repartition records of a batch are combined per group; applied on
// the aggregating side they give exactly what applying each record's
// contribution one by one gives.
func TestRepartitionCombinesPerGroup(t *testing.T) {
	status := state.Def{Name: "status", Kind: state.Latest}
	totals := state.Def{Name: "totals", Kind: state.Aggregate, From: "status", GroupBy: "client", By: []string{"status", "currency"}, Sum: "amount"}
	daily := state.Def{Name: "daily", Kind: state.Aggregate, From: "status", GroupBy: "client", By: []string{"status"}, Sum: "amount",
		Window: 24 * time.Hour, TimeField: "at"}
	tables := &Tables{App: "app", Store: openStore(t), Defs: []state.Def{status, totals, daily}}
	bs := newBatchState(tables, 0, 8)

	day := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	statuses := []string{"APPROVED", "BILLED", "REFUNDED"}
	var recs []map[string]any
	for i := range 60 {
		recs = append(recs, map[string]any{
			"id": fmt.Sprintf("t%d", i%25), "client": fmt.Sprintf("c%d", i%4), "status": statuses[i%3],
			"currency": []string{"USD", "EUR"}[i%2], "amount": int64(100 + i), "at": day.Add(time.Duration(i%30) * time.Hour),
		})
	}
	// What one record at a time gives: each contribution applied in turn,
	// subtracting the row the record replaces.
	want := map[string]map[string]state.AggValue{"totals": {}, "daily": {}}
	rows := map[string]map[string]any{}
	for _, rec := range recs {
		id := rec["id"].(string)
		for _, d := range []state.Def{totals, daily} {
			cs, err := contributions(d, rows[id], rec, []byte(id), day)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				want[d.Name][c.group] = want[d.Name][c.group].Apply(c.change)
			}
		}
		rows[id] = rec
		if _, err := bs.update(rec, []byte(id), day); err != nil {
			t.Fatal(err)
		}
	}
	outs, _, err := bs.flush(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]state.AggValue{"totals": {}, "daily": {}}
	seen := map[string]bool{}
	for _, o := range outs {
		var table string
		switch o.Topic {
		case "app-totals-repartition":
			table = "totals"
		case "app-daily-repartition":
			table = "daily"
		default:
			continue
		}
		if seen[o.Topic+"/"+string(o.Key)] {
			t.Errorf("two repartition records for %s %s in one batch", table, o.Key)
		}
		seen[o.Topic+"/"+string(o.Key)] = true
		var c state.Change
		if err := json.Unmarshal(o.Value, &c); err != nil {
			t.Fatal(err)
		}
		got[table][string(o.Key)] = got[table][string(o.Key)].Apply(c)
	}
	for table := range want {
		for g, w := range want[table] {
			if gv := got[table][g]; gv.Count != w.Count || gv.Sum != w.Sum || !reflect.DeepEqual(nonEmpty(gv.Groups), nonEmpty(w.Groups)) ||
				!reflect.DeepEqual(gv.WindowStart, w.WindowStart) {
				t.Errorf("%s[%s] = %+v, want %+v", table, g, gv, w)
			}
		}
		if len(got[table]) != len(want[table]) {
			t.Errorf("%s: %d groups, want %d", table, len(got[table]), len(want[table]))
		}
	}
	if n := len(seen); n >= 2*len(recs) {
		t.Errorf("%d repartition records for %d records: not combined", n, len(recs))
	}
}

func nonEmpty(m map[string]state.Group) map[string]state.Group {
	if len(m) == 0 {
		return nil
	}
	return m
}

func TestAddDeltas(t *testing.T) {
	for _, tc := range []struct {
		name         string
		deltas, more []state.Delta
		want         []state.Delta
	}{
		{"into nothing", nil, []state.Delta{{By: "A", Count: 1, Sum: 5}}, []state.Delta{{By: "A", Count: 1, Sum: 5}}},
		{"same sub-group adds up", []state.Delta{{By: "A", Count: 1, Sum: 5}}, []state.Delta{{By: "A", Count: 2, Sum: 7}}, []state.Delta{{By: "A", Count: 3, Sum: 12}}},
		{"another sub-group is kept apart", []state.Delta{{By: "A", Count: 1}}, []state.Delta{{By: "B", Count: -1, Sum: -3}}, []state.Delta{{By: "A", Count: 1}, {By: "B", Count: -1, Sum: -3}}},
		{"netting to nothing is left out", []state.Delta{{By: "A", Count: 1, Sum: 5}, {By: "B", Count: 1}}, []state.Delta{{By: "A", Count: -1, Sum: -5}}, []state.Delta{{By: "B", Count: 1}}},
		{"a zero delta adds nothing", nil, []state.Delta{{By: "A"}}, nil},
		{"a move between sub-groups", nil, []state.Delta{{By: "A", Count: -1, Sum: -5}, {By: "B", Count: 1, Sum: 5}}, []state.Delta{{By: "A", Count: -1, Sum: -5}, {By: "B", Count: 1, Sum: 5}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := addDeltas(tc.deltas, tc.more); !reflect.DeepEqual(got, tc.want) && (len(got) != 0 || len(tc.want) != 0) {
				t.Errorf("addDeltas = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// A batch that updates several tables kept here writes every changed key
// of each to the store. (The writes of the first table were once appended
// through a pointer into a slice that the second table's entry had moved,
// and the store lost them while the changelog had them.)
func TestFlushWritesEveryTable(t *testing.T) {
	status := state.Def{Name: "status", Kind: state.Latest, Fields: []string{"status", "id"}}
	counts := state.Def{Name: "counts", Kind: state.Count}
	tables := &Tables{App: "app", Store: openStore(t), Defs: []state.Def{status, counts}}
	bs := newBatchState(tables, 0, 8)
	ts := time.Unix(1_700_000_000, 0)
	const keys = 20
	for i := range 3 * keys {
		id := fmt.Sprintf("t%02d", i%keys)
		if _, err := bs.update(map[string]any{"id": id, "status": fmt.Sprint("S", i), "extra": i}, []byte(id), ts); err != nil {
			t.Fatal(err)
		}
	}
	outs, writes, err := bs.flush(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 2*keys {
		t.Errorf("%d changelog records, want %d", len(outs), 2*keys)
	}
	got := map[string]map[string]string{}
	for _, w := range writes {
		if got[w.Table] != nil {
			t.Errorf("table %s has two StateWrites", w.Table)
		}
		got[w.Table] = map[string]string{}
		for _, kv := range w.Writes {
			got[w.Table][string(kv.Key)] = string(kv.Value)
		}
	}
	for i := range keys {
		id := fmt.Sprintf("t%02d", i)
		// The last update of id was record 2*keys+i: status S<that>.
		if want := fmt.Sprintf(`{"id":%q,"status":"S%d"}`, id, 2*keys+i); got["status"][id] != want {
			t.Errorf("status %s = %q, want %q", id, got["status"][id], want)
		}
		if want := `{"count":3}`; got["counts"][id] != want {
			t.Errorf("counts %s = %q, want %q", id, got["counts"][id], want)
		}
	}
}

// Two latest tables kept whole take each key's last record of the batch,
// each its own fields of it, one changelog record per table and key, in
// first-touch order.
func TestTwoTablesKeptWhole(t *testing.T) {
	store := openStore(t)
	tables := &Tables{App: "app", Store: store, Defs: []state.Def{
		{Name: "status", Kind: state.Latest, Fields: []string{"id", "status"}},
		{Name: "amounts", Kind: state.Latest, Fields: []string{"amount"}},
	}}
	if !tables.keptWhole() {
		t.Fatal("keptWhole: two latest tables without version or aggregates keep records whole")
	}
	bs := newBatchState(tables, 0, 4)
	ts := time.Unix(1_700_000_000, 0)
	for _, r := range []struct {
		id, status string
		amount     int64
	}{{"t1", "APPROVED", 10}, {"t2", "DECLINED", 20}, {"t1", "BILLED", 30}} {
		if _, err := bs.update(map[string]any{"id": r.id, "status": r.status, "amount": r.amount}, []byte(r.id), ts); err != nil {
			t.Fatal(err)
		}
	}
	outs, writes, err := bs.flush(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range outs {
		got = append(got, o.Topic+" "+string(o.Key)+" "+string(o.Value))
	}
	want := []string{
		`app-status-changelog t1 {"id":"t1","status":"BILLED"}`,
		`app-amounts-changelog t1 {"amount":30}`,
		`app-status-changelog t2 {"id":"t2","status":"DECLINED"}`,
		`app-amounts-changelog t2 {"amount":20}`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("changelog records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(writes) != 2 || len(writes[0].Writes) != 2 || len(writes[1].Writes) != 2 {
		t.Errorf("store writes = %+v, want two tables of two keys", writes)
	}
}
