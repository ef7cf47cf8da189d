package stream

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/internal/pipeline"
)

// startCommitter starts an embedded broker with topic (partitions
// partitions) and a committer with producers producers on it, and returns
// the broker's address.
func startCommitter(t *testing.T, topic string, partitions int32, producers int) (*committer, string) {
	t.Helper()
	addr, cfg := startTopic(t, topic, partitions)
	return newCommitter([]string{addr}, cfg, "test-group", "", producers, slog.New(slog.DiscardHandler)), addr
}

// startTopic starts an embedded broker with topic (partitions partitions)
// and returns its address and the client configuration for it.
func startTopic(t *testing.T, topic string, partitions int32) (string, *sarama.Config) {
	t.Helper()
	br := enginetest.StartBroker(t)
	cfg, err := SaramaConfig(pipeline.Kafka{})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sarama.NewClusterAdmin([]string{br.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	return br.Addr(), cfg
}

// readCommitted reads topic (read_committed) until it holds want records
// and no more arrive for a second, and counts them by value.
func readCommitted(t *testing.T, addr, topic string, want int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for _, r := range enginetest.ReadAll(t, addr, topic, want, time.Second, 20*time.Second) {
		seen[string(r.Value)]++
	}
	return seen
}

// Batches committed at once from many partitions share transactions, and
// every record is read exactly once. Two producers: while both are busy,
// the partitions' batches queue for the next one free.
func TestCommitterSharesTransactions(t *testing.T) {
	const partitions, batches, perBatch = 8, 40, 25
	c, addr := startCommitter(t, "out", partitions, 2)
	var wg sync.WaitGroup
	errs := make(chan error, partitions*batches)
	for p := range int32(partitions) {
		wg.Go(func() {
			for b := range batches {
				msgs := make([]*sarama.ProducerMessage, perBatch)
				for i := range msgs {
					msgs[i] = &sarama.ProducerMessage{Topic: "out", Value: sarama.StringEncoder(fmt.Sprintf("%d/%d/%d", p, b, i)), Metadata: pinned(p)}
				}
				if err := c.commit(nil, msgs, nil); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	txns, got := c.txns.Load(), c.batches.Load()
	if got != partitions*batches {
		t.Errorf("%d batches committed, want %d", got, partitions*batches)
	}
	if txns >= got {
		t.Errorf("%d transactions for %d batches from %d partitions at once: none shared", txns, got, partitions)
	}
	t.Logf("%d batches in %d transactions", got, txns)
	seen := readCommitted(t, addr, "out", partitions*batches*perBatch)
	if len(seen) != partitions*batches*perBatch {
		t.Errorf("%d records read, want %d", len(seen), partitions*batches*perBatch)
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("record %s read %d times", v, n)
		}
	}
}

// A batch that cannot be written fails its transaction: nothing of it, or
// of the batches that shared it, is visible, and the committer goes on.
func TestCommitterAbortsTheWholeTransaction(t *testing.T) {
	c, addr := startCommitter(t, "out", 2, 1)
	defer c.close()
	good := func(tag string, p int32) []*sarama.ProducerMessage {
		return []*sarama.ProducerMessage{{Topic: "out", Value: sarama.StringEncoder(tag), Metadata: pinned(p)}}
	}
	// A record over the producer's size limit fails the send.
	huge := []*sarama.ProducerMessage{{Topic: "out", Value: sarama.ByteEncoder(make([]byte, 2<<20)), Metadata: pinned(0)}}
	// Queued together: the committer takes them into one transaction
	// while it is still busy with the first.
	var wg sync.WaitGroup
	results := make([]error, 3)
	for i, msgs := range [][]*sarama.ProducerMessage{good("first", 0), huge, good("beside", 1)} {
		wg.Go(func() { results[i] = c.commit(nil, msgs, nil) })
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	if results[1] == nil {
		t.Fatal("a record over the size limit was committed")
	}
	// The failure names what failed: the record and why.
	if msg := results[1].Error(); !strings.Contains(msg, "produce:") || !strings.Contains(msg, "larger than") {
		t.Errorf("failure %q does not say the record was too large", msg)
	}
	// What failed is retried, as the handler retries it, without the bad
	// record; then one more batch after.
	for i, err := range results {
		if err != nil && i != 1 {
			if err := c.commit(nil, good([]string{"first", "", "beside"}[i], int32(i%2)), nil); err != nil {
				t.Fatalf("retry: %v", err)
			}
		}
	}
	if err := c.commit(nil, good("after", 1), nil); err != nil {
		t.Fatalf("after the failed transaction: %v", err)
	}
	seen := readCommitted(t, addr, "out", 3)
	for _, v := range []string{"first", "beside", "after"} {
		if seen[v] != 1 {
			t.Errorf("record %q read %d times, want 1", v, seen[v])
		}
	}
	for v := range seen {
		if !strings.Contains("first beside after", v) {
			t.Errorf("record of %d bytes from the failed transaction is visible", len(v))
		}
	}
}

// A committer started with the instance id of one that crashed with a
// transaction open fences it: the broker aborts that transaction when the
// new producers start, so read_committed readers see the new commits at
// once rather than after the transaction timeout (set to a minute here,
// longer than the read waits).
func TestCommitterFencesItsPredecessor(t *testing.T) {
	addr, cfg := startTopic(t, "out", 1)
	cfg.Producer.Transaction.Timeout = time.Minute
	// The predecessor: the committer's first producer, left in the middle
	// of a transaction as a SIGKILL leaves it.
	pc := *cfg
	pc.Producer.Transaction.ID = "test-group-0a0b0c0d0e0f-0"
	crashed, err := sarama.NewSyncProducer([]string{addr}, &pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = crashed.Close() })
	if err := crashed.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	if err := crashed.SendMessages([]*sarama.ProducerMessage{{Topic: "out", Value: sarama.StringEncoder("left open")}}); err != nil {
		t.Fatal(err)
	}

	c := newCommitter([]string{addr}, cfg, "test-group", "0a0b0c0d0e0f", 2, slog.New(slog.DiscardHandler))
	defer c.close()
	if err := c.commit(nil, []*sarama.ProducerMessage{{Topic: "out", Value: sarama.StringEncoder("after")}}, nil); err != nil {
		t.Fatal(err)
	}
	recs := enginetest.ReadAll(t, addr, "out", 1, time.Second, 15*time.Second)
	if len(recs) != 1 || string(recs[0].Value) != "after" {
		var got []string
		for _, r := range recs {
			got = append(got, string(r.Value))
		}
		t.Fatalf("read %q, want only \"after\": the predecessor's transaction still holds the partition", got)
	}
}
