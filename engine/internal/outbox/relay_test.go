package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/billing-engine/billing/engine/avro"
	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/internal/outbox"
	"github.com/billing-engine/billing/engine/internal/pipeline"
	"github.com/billing-engine/billing/engine/internal/stream"
	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
)

// fixture is a store with pending outbox entries and a broker to relay
// them to.
type fixture struct {
	db     *store.DB
	broker *enginetest.Broker
	reg    *avro.Registry
	schema *avro.Schema
	cfg    *sarama.Config
	// want lists, per transaction id, the statuses it went through.
	want map[string][]string
	n    int // outbox entries
}

func newFixture(t *testing.T, db *store.DB, txs int) *fixture {
	t.Helper()
	reg, err := avro.LoadDir(filepath.Join(enginetest.RepoRoot(t), "schemas"))
	if err != nil {
		t.Fatal(err)
	}
	schema, err := reg.Schema("Transaction")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := stream.SaramaConfig(pipeline.Kafka{ClientID: "outbox-test"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, broker: enginetest.StartBroker(t), reg: reg, schema: schema, cfg: cfg, want: map[string][]string{}}
	ctx := t.Context()
	if err := db.CreateClient(ctx, store.Client{ID: "c-1", Name: "C", Email: "c@example.com", Status: store.ClientActive}, nil); err != nil {
		t.Fatal(err)
	}
	for i := range txs {
		id := fmt.Sprintf("t-%03d", i)
		tx := store.Transaction{ID: id, ClientID: "c-1", AmountMinor: int64(100 + i), Currency: "EUR", Status: store.StatusApproved}
		if err := db.CreateTransaction(ctx, tx, nil); err != nil {
			t.Fatal(err)
		}
		f.want[id] = append(f.want[id], "APPROVED")
		f.n++
		if i%3 == 0 {
			for _, s := range []store.TxStatus{store.StatusBilled, store.StatusRefunded} {
				if _, err := db.UpdateTransaction(ctx, id, func(t store.Transaction) (store.Transaction, error) { t.Status = s; return t, nil }); err != nil {
					t.Fatal(err)
				}
				f.want[id] = append(f.want[id], string(s))
				f.n++
			}
		}
	}
	return f
}

func (f *fixture) relay(t *testing.T, hooks outbox.Hooks) *outbox.Relay {
	t.Helper()
	r, err := outbox.New(outbox.Config{
		Brokers: []string{f.broker.Addr()}, Sarama: f.cfg, Store: f.db, Schema: f.schema,
		ApplicationID: "test", CreateTopic: true, Hooks: hooks, LeaseTTL: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// run runs r until the test ends or it returns; the returned channel
// carries its result.
func run(t *testing.T, r *outbox.Relay) <-chan error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done <- r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(30 * time.Second):
			t.Error("relay did not stop")
		}
	})
	return done
}

// waitSent waits until no outbox entry is pending.
func (f *fixture) waitSent(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		pending, _, err := f.db.OutboxCounts(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("outbox entries still pending after 30s")
}

// check reads the transactions topic read_committed and asserts that
// every version was published exactly once, in order per transaction.
func (f *fixture) check(t *testing.T) {
	t.Helper()
	recs := enginetest.ReadAll(t, f.broker.Addr(), "transactions", f.n, 1500*time.Millisecond, 30*time.Second)
	if len(recs) != f.n {
		t.Errorf("got %d records on transactions, want %d", len(recs), f.n)
	}
	slices.SortFunc(recs, func(a, b enginetest.Record) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	got := map[string][]string{}
	seen := map[string]bool{}
	for _, r := range recs {
		rec, err := f.reg.Decode(f.schema, r.Value)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		id := string(r.Key)
		if rec["transaction_id"] != id {
			t.Errorf("key %s carries transaction %v", id, rec["transaction_id"])
		}
		if want := stream.PartitionFor(r.Key, 8); r.Partition != want {
			t.Errorf("key %s on partition %d, want %d (murmur2)", id, r.Partition, want)
		}
		oid := r.Headers[outbox.HeaderOutboxID]
		if _, err := strconv.ParseInt(oid, 10, 64); err != nil || seen[oid] {
			t.Errorf("outbox id header %q: missing, malformed or seen twice", oid)
		}
		seen[oid] = true
		got[id] = append(got[id], rec["status"].(string))
	}
	for id, want := range f.want {
		if !slices.Equal(got[id], want) {
			t.Errorf("%s: got statuses %v, want %v (once each, in order)", id, got[id], want)
		}
	}
}

func TestRelayPublishesEveryEntryOnceInOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 40)
		r := f.relay(t, outbox.Hooks{})
		run(t, r)
		f.waitSent(t)
		f.check(t)
		if got := r.Published(); got != int64(f.n) {
			t.Errorf("Published: got %d, want %d", got, f.n)
		}
		// Entries written while it runs go out promptly.
		start := time.Now()
		if err := db.CreateTransaction(t.Context(), store.Transaction{ID: "late", ClientID: "c-1", AmountMinor: 1, Currency: "EUR", Status: store.StatusApproved}, nil); err != nil {
			t.Fatal(err)
		}
		f.want["late"], f.n = []string{"APPROVED"}, f.n+1
		f.waitSent(t)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("a new entry took %s to be published", d)
		}
		f.check(t)
	})
}

// failOnce returns a hook that fails its first call.
func failOnce(calls *atomic.Int64) func([]int64) error {
	return func([]int64) error {
		if calls.Add(1) == 1 {
			return errors.New("killed")
		}
		return nil
	}
}

// TestRelayCrashes kills the relay at each critical point of its first
// batch, starts a new one, and checks that read_committed readers see
// every entry exactly once.
func TestRelayCrashes(t *testing.T) {
	for _, point := range []string{"after read (before publish)", "before commit", "after publish (before mark)"} {
		t.Run(point, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				f := newFixture(t, db, 25)
				var calls atomic.Int64
				var hooks outbox.Hooks
				switch point {
				case "after read (before publish)":
					hooks.AfterRead = failOnce(&calls)
				case "before commit":
					hooks.BeforeCommit = failOnce(&calls)
				default:
					hooks.AfterPublish = failOnce(&calls)
				}
				first := f.relay(t, hooks)
				select {
				case err := <-run(t, first):
					if !errors.Is(err, outbox.ErrFault) {
						t.Fatalf("first relay: got %v, want ErrFault", err)
					}
				case <-time.After(30 * time.Second):
					t.Fatal("first relay did not reach its fault point")
				}
				if pending, _, _ := db.OutboxCounts(t.Context()); pending != int64(f.n) {
					t.Fatalf("after the crash: %d entries pending, want all %d", pending, f.n)
				}
				// The crashed relay's lease has not expired; the new one
				// waits for it, as a restarted process would.
				second := f.relay(t, outbox.Hooks{})
				run(t, second)
				f.waitSent(t)
				f.check(t)
				want := int64(f.n)
				if point == "after publish (before mark)" {
					want = 0 // the first relay published them all
				}
				if got := second.Published(); got != want {
					t.Errorf("second relay published %d, want %d", got, want)
				}
			})
		})
	}
}

// TestTwoRelaysShareTheOutbox runs two relays on one database: one holds
// the lease, and every entry is published once.
func TestTwoRelaysShareTheOutbox(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	f := newFixture(t, db, 30)
	a, b := f.relay(t, outbox.Hooks{}), f.relay(t, outbox.Hooks{})
	run(t, a)
	run(t, b)
	f.waitSent(t)
	f.check(t)
	if a.Published()+b.Published() != int64(f.n) || a.Published() > 0 && b.Published() > 0 {
		t.Errorf("published %d and %d, want %d by one relay", a.Published(), b.Published(), f.n)
	}
}
