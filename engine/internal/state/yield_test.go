package state

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// TestWriteYieldReadsDuringFlushAndCompaction checks WithWriteYield: the
// function runs while Pebble writes table files, on a flush and on a
// compaction, and a read of the store from inside it (what a query
// answered there does) returns rather than deadlocking on a lock the
// writer holds.
func TestWriteYieldReadsDuringFlushAndCompaction(t *testing.T) {
	var s *Store
	var calls, reads atomic.Int64
	yield := func() {
		calls.Add(1)
		if s == nil {
			return
		}
		if _, _, err := s.Get("t", 0, []byte("k-0")); err == nil {
			reads.Add(1)
		}
	}
	var err error
	s, err = Open(t.TempDir(), WithWriteYield(yield), WithFlushEvery(0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	value := make([]byte, 100)
	write := func(round int) {
		t.Helper()
		ws := make([]Write, 2000)
		for i := range ws {
			ws[i] = Write{Key: fmt.Appendf(nil, "k-%d", i), Value: fmt.Appendf(value[:0], "round %d value %d %80s", round, i, "")}
		}
		if err := s.Apply("t", 0, ws, nil); err != nil {
			t.Fatal(err)
		}
	}
	flush := func(what string) {
		t.Helper()
		before := calls.Load()
		done := make(chan error, 1)
		go func() { done <- s.db.Flush() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not end: the yield's read deadlocked", what)
		}
		if calls.Load() == before {
			t.Fatalf("%s wrote a table without calling the yield", what)
		}
	}
	write(0)
	flush("the first flush")
	write(1)
	flush("the second flush")

	before := calls.Load()
	done := make(chan error, 1)
	go func() { done <- s.db.Compact([]byte{0}, []byte{0xff}, false) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("compaction: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the compaction did not end: the yield's read deadlocked")
	}
	if calls.Load() == before {
		t.Fatal("the compaction wrote a table without calling the yield")
	}
	if reads.Load() == 0 {
		t.Fatal("no read from inside the yield succeeded")
	}
	// What the store holds is the second round's.
	v, ok, err := s.Get("t", 0, []byte("k-7"))
	if err != nil || !ok || string(v[:14]) != "round 1 value " {
		t.Fatalf("Get after compaction = %q, %v, %v; want round 1's value", v, ok, err)
	}
}
