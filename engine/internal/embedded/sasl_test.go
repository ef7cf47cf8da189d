package embedded

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
)

// frame returns a size-prefixed Kafka request with header key, version,
// corr and client id "cid", followed by body.
func frame(key, version int16, corr int32, body []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 3)
	b = append(b, "cid"...)
	b = append(b, body...)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

func TestFramesAnyCut(t *testing.T) {
	mech := binary.BigEndian.AppendUint16(nil, 13)
	mech = append(mech, "SCRAM-SHA-256"...)
	stream := slices.Concat(frame(18, 3, 1, make([]byte, 40)), frame(17, 1, 2, mech), frame(36, 2, 3, make([]byte, 2000)))
	want := "[{18 3 1} {17 1 2} {36 2 3}] SCRAM-SHA-256 false"
	for _, step := range []int{1, 3, 7, 64, len(stream)} {
		c := &authConn{}
		for i := 0; i < len(stream); i += step {
			c.in.feed(stream[i:min(i+step, len(stream))], c.request)
		}
		if got := fmt.Sprint(c.unanswered, " ", c.mechanism, " ", c.settled); got != want {
			t.Errorf("reads of %d bytes: got %s, want %s", step, got, want)
		}
		// A request past authentication: nothing more to follow.
		c.in.feed(frame(3, 12, 4, nil), c.request)
		if c.unanswered != nil || !c.settled {
			t.Errorf("reads of %d bytes, then a Metadata request: got %v, settled %v; want nothing, settled", step, c.unanswered, c.settled)
		}
	}
}

func TestHandshakeMechanismCutShort(t *testing.T) {
	full := frame(17, 1, 2, append(binary.BigEndian.AppendUint16(nil, 5), "PLAIN"...))[12:]
	for n := range len(full) {
		if got := handshakeMechanism(full[:n]); got != "" {
			t.Errorf("%d bytes: got %q, want \"\"", n, got)
		}
	}
	if got := handshakeMechanism(full); got != "PLAIN" {
		t.Errorf("got %q, want PLAIN", got)
	}
}
