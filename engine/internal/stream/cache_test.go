package stream

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// TestPartCacheStaysBounded fills a partition cache far past its bound:
// it never holds more than two generations, and the most recent values
// are still there.
func TestPartCacheStaysBounded(t *testing.T) {
	c := &partCache{cur: map[tableKey]any{}}
	const n = 7*maxCached + 123
	for i := range n {
		c.put(tableKey{"t", fmt.Sprint(i)}, i)
		if got := len(c.cur) + len(c.prev); got > 2*maxCached {
			t.Fatalf("after %d puts the cache holds %d values, want at most %d", i+1, got, 2*maxCached)
		}
	}
	for _, tc := range []struct {
		key  int
		want bool
	}{
		{n - 1, true},                // the newest
		{n - maxCached, true},        // a full generation back
		{n - 2*maxCached - 1, false}, // older than two generations
		{0, false},
	} {
		v, ok := c.get(tableKey{"t", fmt.Sprint(tc.key)})
		if ok != tc.want || (ok && v != tc.key) {
			t.Errorf("get(%d) = %v, %v; want present %v", tc.key, v, ok, tc.want)
		}
	}
	// Updating a key already in the current generation does not roll it.
	before := len(c.cur)
	c.put(tableKey{"t", fmt.Sprint(n - 1)}, -1)
	if len(c.cur) != before {
		t.Errorf("updating a present key changed the generation's size from %d to %d", before, len(c.cur))
	}
	if v, _ := c.get(tableKey{"t", fmt.Sprint(n - 1)}); v != -1 {
		t.Errorf("updated value: got %v, want -1", v)
	}
}

// TestDetachCopiesStrings checks that detach leaves no string of a row,
// nested ones included, pointing into the memory it was decoded from, and
// changes no value.
func TestDetachCopiesStrings(t *testing.T) {
	body := strings.Repeat("x", 1000) + "APPROVED" + "t-1" + "USD"
	row := map[string]any{
		"status": body[1000:1008], "id": body[1008:1011], "n": int64(5),
		"nested": map[string]any{"currency": body[1011:1014]},
		"list":   []any{body[1008:1011], 1.5},
	}
	detach(row)
	want := map[string]any{
		"status": "APPROVED", "id": "t-1", "n": int64(5),
		"nested": map[string]any{"currency": "USD"},
		"list":   []any{"t-1", 1.5},
	}
	if !reflect.DeepEqual(row, want) {
		t.Fatalf("detach changed the row to %v, want %v", row, want)
	}
	start := uintptr(unsafe.Pointer(unsafe.StringData(body)))
	inBody := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return p >= start && p < start+uintptr(len(body))
	}
	for _, s := range []string{row["status"].(string), row["id"].(string),
		row["nested"].(map[string]any)["currency"].(string), row["list"].([]any)[0].(string)} {
		if inBody(s) {
			t.Errorf("%q still points into the decoded body", s)
		}
	}
}
