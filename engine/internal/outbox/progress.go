package outbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/IBM/sarama"
)

// Keys of the records on the progress topic.
const (
	progressKey = "outbox"
	markerKey   = "relay-start"
)

// progress is the value of a progress record: the outbox ids of the batch
// published in the same Kafka transaction, as inclusive ranges.
type progress struct {
	Ranges [][2]int64 `json:"ranges"`
	At     time.Time  `json:"at"`
}

func newProgress(ids []int64, at time.Time) progress {
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	var p progress
	p.At = at.UTC()
	for _, id := range sorted {
		if n := len(p.Ranges); n > 0 && p.Ranges[n-1][1]+1 >= id {
			p.Ranges[n-1][1] = max(p.Ranges[n-1][1], id)
			continue
		}
		p.Ranges = append(p.Ranges, [2]int64{id, id})
	}
	return p
}

// ids returns the ids of p (bounded, so a corrupt record cannot blow up).
func (p progress) ids() ([]int64, error) {
	var out []int64
	for _, r := range p.Ranges {
		if r[1] < r[0] || r[1]-r[0] > 100_000 || len(out) > 1_000_000 {
			return nil, fmt.Errorf("outbox: progress range %v out of bounds", r)
		}
		for id := r[0]; id <= r[1]; id++ {
			out = append(out, id)
		}
	}
	return out, nil
}

func (p progress) message(topic string) (*sarama.ProducerMessage, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("outbox: progress: %w", err)
	}
	return &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(progressKey), Value: sarama.ByteEncoder(b)}, nil
}

// errNoMarker: the start marker was not read back in time.
var errNoMarker = errors.New("outbox: start marker not read back")

// readProgress commits a start marker with prod, then reads the progress
// topic (partition 0, read_committed) until the marker and returns the ids
// of the last progress record before it (nil when there is none).
func (r *Relay) readProgress(ctx context.Context, prod sarama.SyncProducer, client sarama.Client) ([]int64, error) {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	marker := []byte(hex.EncodeToString(nonce))
	if err := prod.BeginTxn(); err != nil {
		return nil, fmt.Errorf("outbox: begin marker: %w", err)
	}
	_, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: r.cfg.ProgressTopic, Key: sarama.StringEncoder(markerKey), Value: sarama.ByteEncoder(marker)})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("outbox: send marker: %w", err), prod.AbortTxn())
	}
	if err := prod.CommitTxn(); err != nil {
		return nil, fmt.Errorf("outbox: commit marker: %w", err)
	}
	if err := client.RefreshMetadata(r.cfg.ProgressTopic); err != nil {
		return nil, fmt.Errorf("outbox: progress topic metadata: %w", err)
	}
	oldest, err := client.GetOffset(r.cfg.ProgressTopic, 0, sarama.OffsetOldest)
	if err != nil {
		return nil, fmt.Errorf("outbox: progress topic: %w", err)
	}
	newest, err := client.GetOffset(r.cfg.ProgressTopic, 0, sarama.OffsetNewest)
	if err != nil {
		return nil, fmt.Errorf("outbox: progress topic: %w", err)
	}
	// Look back a window of records; widen it while no progress record is
	// found and older records remain.
	for window := int64(64); ; window *= 8 {
		start := max(oldest, newest-window)
		p, found, err := r.scanProgress(ctx, client, start, marker)
		if err != nil {
			return nil, err
		}
		if found {
			return p.ids()
		}
		if start == oldest {
			return nil, nil
		}
	}
}

// scanProgress reads partition 0 from start until the marker. found
// reports whether a progress record was read before it.
func (r *Relay) scanProgress(ctx context.Context, client sarama.Client, start int64, marker []byte) (p progress, found bool, err error) {
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return p, false, fmt.Errorf("outbox: progress consumer: %w", err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(r.cfg.ProgressTopic, 0, start)
	if err != nil {
		return p, false, fmt.Errorf("outbox: read progress: %w", err)
	}
	defer pc.Close()
	timeout := time.NewTimer(r.cfg.ReadTimeout)
	defer timeout.Stop()
	for {
		select {
		case <-ctx.Done():
			return p, false, ctx.Err()
		case <-timeout.C:
			return p, false, fmt.Errorf("%w within %s", errNoMarker, r.cfg.ReadTimeout)
		case cerr := <-pc.Errors():
			return p, false, fmt.Errorf("outbox: read progress: %w", cerr)
		case m := <-pc.Messages():
			switch string(m.Key) {
			case markerKey:
				if bytes.Equal(m.Value, marker) {
					return p, found, nil
				}
			case progressKey:
				var next progress
				if err := json.Unmarshal(m.Value, &next); err != nil {
					return p, false, fmt.Errorf("outbox: progress record at offset %d: %w", m.Offset, err)
				}
				p, found = next, true
			}
		}
	}
}
