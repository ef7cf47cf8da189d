package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/billing-engine/billing/engine"
	"github.com/billing-engine/billing/engine/avro"
	"github.com/billing-engine/billing/engine/enginetest"
)

// branchTopics maps each status to the topic the billing pipeline routes it to.
var branchTopics = map[string]string{
	"APPROVED": "transactions.approved",
	"DECLINED": "transactions.declined",
	"REFUNDED": "transactions.refunded",
	"BILLED":   "transactions.billed",
}

// env returns the pipeline settings that point the billing pipeline at
// broker, with its data and HTTP port private to the test.
func env(t *testing.T, broker string) map[string]string {
	return map[string]string{
		"BILLING_KAFKA_BROKERS": broker,
		"BILLING_DATA_DIR":      t.TempDir(),
		"BILLING_HTTP_LISTEN":   enginetest.FreeAddr(t),
	}
}

// startEngine runs the billing pipeline in-process until the test ends.
func startEngine(t *testing.T, vars map[string]string) *engine.Engine {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e, done := runEngine(t, ctx, vars)
	select {
	case <-e.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("engine stopped at start: %v", err)
	case <-time.After(30 * time.Second):
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine.Run: %v", err)
		}
	})
	select {
	case <-e.Ready():
	default:
		t.Fatal("engine not ready after 30s")
	}
	return e
}

func registry(t testing.TB) *avro.Registry {
	t.Helper()
	reg, err := avro.LoadDir(filepath.Join(enginetest.RepoRoot(t), "schemas"))
	if err != nil {
		t.Fatalf("schemas: %v", err)
	}
	return reg
}

// produceKgo writes records with franz-go's kgo, a client that is not
// sarama, to show that any producer works.
func produceKgo(t *testing.T, addr string, recs []*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("transactions"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("kgo produce: %v", err)
	}
}

// workload is a set of transactions with the topic each must reach.
type workload struct {
	records []*kgo.Record
	want    map[string][]string // topic -> keys
	dropped []string            // keys the filter drops
}

func newWorkload(t *testing.T, reg *avro.Registry, n, garbage int) workload {
	t.Helper()
	schema, err := reg.Schema("Transaction")
	if err != nil {
		t.Fatal(err)
	}
	w := workload{want: map[string][]string{}}
	gen := engine.NewTxGen(7, 50, "e2e")
	for i := 0; i < n; i++ {
		tx := gen.Next()
		key := tx["transaction_id"].(string)
		switch {
		case i%1000 == 1: // filtered out: not a positive amount
			tx["amount_minor"] = int64(0)
			w.dropped = append(w.dropped, key)
		case i%1000 == 2: // no branch matches: dead-lettered
			tx["status"] = "PENDING"
			w.want["transactions.dlq"] = append(w.want["transactions.dlq"], key)
		default:
			topic := branchTopics[tx["status"].(string)]
			w.want[topic] = append(w.want[topic], key)
		}
		v, err := schema.Encode(tx)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		w.records = append(w.records, &kgo.Record{Key: []byte(key), Value: v})
	}
	for i := 0; i < garbage; i++ {
		key := fmt.Sprintf("garbage-%04d", i)
		w.records = append(w.records, &kgo.Record{Key: []byte(key), Value: garbageValue(i)})
		w.want["transactions.dlq"] = append(w.want["transactions.dlq"], key)
	}
	return w
}

// garbageValue returns undecodable values of several kinds.
func garbageValue(i int) []byte {
	switch i % 4 {
	case 0:
		return []byte("not avro at all")
	case 1:
		return nil // a tombstone
	case 2: // single-object header with a fingerprint nobody knows
		return []byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0x02}
	default: // a known header, a truncated body
		return []byte{0xC3, 0x01}
	}
}

func TestEndToEndBranchesAndDLQ(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	b := enginetest.StartBroker(t)
	startEngine(t, env(t, b.Addr()))
	w := newWorkload(t, registry(t), 20_000, 200)
	produceKgo(t, b.Addr(), w.records)
	checkOutputs(t, b.Addr(), w)
}

// checkOutputs asserts every topic holds exactly the expected keys, once
// each, read_committed, and that dead letters carry their reason.
func checkOutputs(t *testing.T, addr string, w workload) {
	t.Helper()
	for _, topic := range []string{"transactions.approved", "transactions.declined", "transactions.refunded", "transactions.billed", "transactions.dlq"} {
		want := w.want[topic]
		got := enginetest.ReadAll(t, addr, topic, len(want), 2*time.Second, 90*time.Second)
		counts := map[string]int{}
		for _, r := range got {
			counts[string(r.Key)]++
			if topic == "transactions.dlq" {
				checkDeadLetter(t, r)
			}
		}
		for _, k := range want {
			if counts[k] != 1 {
				t.Errorf("%s: key %s seen %d times, want 1", topic, k, counts[k])
			}
			delete(counts, k)
		}
		for _, k := range w.dropped {
			if counts[k] > 0 {
				t.Errorf("%s: filtered key %s was routed", topic, k)
			}
		}
		if len(counts) > 0 {
			t.Errorf("%s: %d unexpected keys, e.g. %v", topic, len(counts), firstKeys(counts, 3))
		}
		if len(got) != len(want) {
			t.Errorf("%s: got %d records, want %d", topic, len(got), len(want))
		}
	}
}

func checkDeadLetter(t *testing.T, r enginetest.Record) {
	t.Helper()
	for _, h := range []string{"dlq.reason", "dlq.stage", "dlq.pipeline", "dlq.topic", "dlq.partition", "dlq.offset"} {
		if r.Headers[h] == "" {
			t.Errorf("dead letter %s: header %s missing", r.Key, h)
		}
	}
	key := string(r.Key)
	stage := r.Headers["dlq.stage"]
	switch {
	case strings.HasPrefix(key, "garbage-") && stage != "decode":
		t.Errorf("dead letter %s: stage %q, want decode (reason %q)", key, stage, r.Headers["dlq.reason"])
	case !strings.HasPrefix(key, "garbage-") && stage != "branch":
		t.Errorf("dead letter %s: stage %q, want branch (reason %q)", key, stage, r.Headers["dlq.reason"])
	}
	if r.Headers["dlq.topic"] != "transactions" {
		t.Errorf("dead letter %s: dlq.topic %q, want transactions", key, r.Headers["dlq.topic"])
	}
}

func firstKeys(m map[string]int, n int) []string {
	var out []string
	for k := range m {
		if len(out) == n {
			break
		}
		out = append(out, k)
	}
	return out
}

func TestSchemaEvolutionOldWriter(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	reg := registry(t)
	current, err := reg.Schema("Transaction")
	if err != nil {
		t.Fatal(err)
	}
	var old *avro.Schema
	for _, s := range reg.Versions(current.Name) {
		if s.Fingerprint != current.Fingerprint {
			old = s
		}
	}
	if old == nil {
		t.Fatal("no older Transaction schema in schemas/versions")
	}
	b := enginetest.StartBroker(t)
	startEngine(t, env(t, b.Addr()))
	now := time.Now().UTC().Truncate(time.Millisecond)
	want := map[string][]string{}
	var recs []*kgo.Record
	for i, status := range []string{"APPROVED", "DECLINED", "REFUNDED", "BILLED", "APPROVED", "DECLINED"} {
		id := fmt.Sprintf("old-%d", i)
		v, err := old.Encode(map[string]any{
			"transaction_id": id, "client_id": "c-1", "amount_minor": int64(1234 + i),
			"currency": "EUR", "status": status, "created_at": now, "updated_at": now,
		})
		if err != nil {
			t.Fatalf("encode with the old schema: %v", err)
		}
		if fp, _ := avro.Fingerprint(v); fp == current.Fingerprint {
			t.Fatal("old and current schemas share a fingerprint")
		}
		recs = append(recs, &kgo.Record{Key: []byte(id), Value: v})
		want[branchTopics[status]] = append(want[branchTopics[status]], id)
	}
	produceKgo(t, b.Addr(), recs)
	checkOutputs(t, b.Addr(), workload{want: want})
}

func TestValidateRejectsMissingFile(t *testing.T) {
	err := engine.Validate(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil {
		t.Fatal("got nil error for a missing file")
	}
	if !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("error %q does not name the file", err)
	}
}
