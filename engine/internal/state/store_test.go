package state

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
)

// TestCheckpointNamesItsTopic covers checkpoints: none before the first
// write, the position written with the last batch, a changelog position
// (stored as older engines read it), one written by an older engine, and
// Clear.
func TestCheckpointNamesItsTopic(t *testing.T) {
	s, err := Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check := func(step string, want Position, wantOK bool) {
		t.Helper()
		got, ok, err := s.Checkpoint("t", 1)
		if err != nil || ok != wantOK || got != want {
			t.Errorf("%s: got %+v, %v, %v; want %+v, %v", step, got, ok, err, want, wantOK)
		}
	}
	check("new store", Position{}, false)
	if err := s.Apply("t", 1, []Write{{Key: []byte("k"), Value: []byte("v")}}, &Position{Topic: "in", Offset: 42}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply("t", 1, []Write{{Key: []byte("k2"), Value: []byte("v2")}}, nil); err != nil {
		t.Fatal(err)
	}
	check("after two batches, the second without checkpoint", Position{Topic: "in", Offset: 42}, true)
	if topics, err := s.CheckpointTopics("t"); err != nil || len(topics) != 1 || topics[0] != "in" {
		t.Errorf("CheckpointTopics: got %v, %v; want [in]", topics, err)
	}

	// A changelog position is stored as engines before source restores
	// wrote it: eight bytes.
	if err := s.Apply("t", 1, nil, &Position{Offset: 9}); err != nil {
		t.Fatal(err)
	}
	check("a changelog position", Position{Offset: 9}, true)
	if v, closer, err := s.db.Get(checkpointKey("t", 1)); err != nil || len(v) != 8 {
		t.Errorf("changelog checkpoint stored as %x (%v), want 8 bytes", v, err)
	} else {
		closer.Close()
	}
	if topics, err := s.CheckpointTopics("t"); err != nil || len(topics) != 0 {
		t.Errorf("CheckpointTopics after a changelog position: got %v, %v; want none", topics, err)
	}

	if err := s.db.Set(checkpointKey("t", 1), binary.BigEndian.AppendUint64(nil, 7), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	check("an older engine's checkpoint", Position{Offset: 7}, true)

	if err := s.Apply("t", 2, []Write{{Key: []byte("k"), Value: []byte("other partition")}}, &Position{Topic: "in", Offset: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Clear("t", 1); err != nil {
		t.Fatal(err)
	}
	check("cleared", Position{}, false)
	if n, err := s.Count("t", 1); err != nil || n != 0 {
		t.Errorf("cleared partition holds %d keys (%v), want 0", n, err)
	}
	if _, ok, err := s.Get("t", 2, []byte("k")); err != nil || !ok {
		t.Errorf("Clear of partition 1 took partition 2's key: %v, %v", ok, err)
	}
}

// The store keeps no log of its own: Close flushes what the memtables
// hold, so a reopened store has every value and checkpoint applied before.
func TestCloseKeepsWrites(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 3; p++ {
		writes := []Write{{Key: []byte("k"), Value: fmt.Appendf(nil, "v%d", p)}}
		if err := s.Apply("t", p, writes, &Position{Offset: int64(10 + p)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for p := int32(0); p < 3; p++ {
		v, ok, err := s.Get("t", p, []byte("k"))
		if err != nil || !ok || string(v) != fmt.Sprintf("v%d", p) {
			t.Errorf("partition %d after reopening: %q, %v, %v; want v%d", p, v, ok, err, p)
		}
		cp, ok, err := s.Checkpoint("t", p)
		if err != nil || !ok || cp.Offset != int64(10+p) {
			t.Errorf("checkpoint of partition %d after reopening: %+v, %v, %v; want offset %d", p, cp, ok, err, 10+p)
		}
	}
}

// Without a log, the store flushes what it was written at least every
// flushEvery, so a crash takes back seconds of batches at most; an idle
// store does not flush.
func TestStoreFlushesWhileWritten(t *testing.T) {
	s, err := Open(t.TempDir(), WithFlushEvery(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	flushes := func() int64 { return s.db.Metrics().Flush.Count }
	time.Sleep(100 * time.Millisecond)
	if n := flushes(); n != 0 {
		t.Errorf("%d flushes of a store never written, want 0", n)
	}
	if err := s.Apply("t", 0, []Write{{Key: []byte("k"), Value: []byte("v")}}, &Position{Offset: 1}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for flushes() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if flushes() == 0 {
		t.Fatal("a written store did not flush within 5s at a 20ms flush interval")
	}
	if n := s.db.Metrics().Levels[0].NumFiles; n == 0 {
		t.Errorf("after the flush, level 0 holds no file")
	}
}
