package state

import (
	"encoding/binary"
	"testing"
)

// TestCheckpointNamesItsTopic covers checkpoints: none before the first
// write, the position written with the last batch, one written by an older
// engine (an offset without topic), and Clear.
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

	if err := s.db.Set(checkpointKey("t", 1), binary.BigEndian.AppendUint64(nil, 7), nil); err != nil {
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
