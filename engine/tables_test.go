package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/billing-engine/billing/engine"
	"github.com/billing-engine/billing/engine/avro"
	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/internal/stream"
	"github.com/billing-engine/billing/plugins/branch/router"
)

// getJSON fetches url and decodes a JSON object answer.
func getJSON(url string) (int, map[string]any, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("decode %s: %w", url, err)
	}
	return resp.StatusCode, body, nil
}

// eventually retries fn until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// statusOf returns the status the instance at base reports for id.
func statusOf(base, id string) (string, error) {
	code, body, err := getJSON(base + "/api/v1/transactions/" + id + "/status")
	if err != nil {
		return "", err
	}
	if code != http.StatusOK {
		return "", fmt.Errorf("status of %s: HTTP %d %v", id, code, body)
	}
	s, _ := body["status"].(string)
	return s, nil
}

func encodeTx(t *testing.T, schema *avro.Schema, id, client, status string, amount int64, at time.Time) *kgo.Record {
	t.Helper()
	v, err := schema.Encode(map[string]any{
		"transaction_id": id, "client_id": client, "amount_minor": amount, "currency": "EUR",
		"status": status, "description": "", "created_at": at, "updated_at": at,
		"billed_at": nil, "billing_cycle_id": nil,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Key: []byte(id), Value: v}
}

func TestStatusQueryFollowsLatestStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	b := enginetest.StartBroker(t)
	vars := env(t, b.Addr())
	startEngine(t, vars)
	base := "http://" + vars["BILLING_HTTP_LISTEN"]
	schema, err := registry(t).Schema("Transaction")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	var recs []*kgo.Record
	// BILLED arrives after REFUNDED, as it may when two producers write
	// the topic; the table keeps the newer version (updated_at).
	for _, v := range []struct {
		status string
		at     int
	}{{"APPROVED", 0}, {"REFUNDED", 2}, {"BILLED", 1}} {
		recs = append(recs, encodeTx(t, schema, "tx-life", "client-life", v.status, 2500, now.Add(time.Duration(v.at)*time.Second)))
	}
	recs = append(recs, encodeTx(t, schema, "tx-other", "client-life", "APPROVED", 700, now))
	produceKgo(t, b.Addr(), recs)

	eventually(t, 30*time.Second, func() error {
		s, err := statusOf(base, "tx-life")
		if err == nil && s != "REFUNDED" {
			err = fmt.Errorf("got status %q, want REFUNDED", s)
		}
		return err
	})
	// The client's totals count each transaction once, in its latest status.
	eventually(t, 30*time.Second, func() error {
		code, body, err := getJSON(base + "/api/v1/tables/client_totals/client-life")
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("client_totals: %d %v %v", code, body, err)
		}
		v := body["value"].(map[string]any)
		groups := v["groups"].(map[string]any)
		want := map[string]any{
			"REFUNDED|EUR": map[string]any{"count": float64(1), "sum": float64(2500)},
			"APPROVED|EUR": map[string]any{"count": float64(1), "sum": float64(700)},
		}
		if fmt.Sprint(groups) != fmt.Sprint(want) || v["count"] != float64(2) {
			return fmt.Errorf("got count %v groups %v, want 2 and %v", v["count"], groups, want)
		}
		return nil
	})
	for _, tc := range []struct{ path, want string }{
		{"/api/v1/transactions/no-such-tx/status", "no such key"},
		{"/api/v1/tables/no_such_table/x", "no such table"},
	} {
		// The key's partition may still be restoring (503): wait for 404.
		eventually(t, 30*time.Second, func() error {
			code, body, err := getJSON(base + tc.path)
			if err != nil || code != http.StatusNotFound || body["detail"] != tc.want {
				return fmt.Errorf("GET %s: got %d %v (%v), want 404 %q", tc.path, code, body, err, tc.want)
			}
			return nil
		})
	}
}

// TestRestoreTables stops the engine and starts it again, first with its
// local state, then with the state deleted: the first start restores
// nothing (the local checkpoints are current), the second rebuilds every
// table, and both answer as before. The status table is restored from its
// changelog topic, or (changelog: source) from the transactions topic,
// with no changelog topic at all. Between the two halves of the workload
// the transactions topic holds an aborted transaction with a newer
// version of every record of the first half: neither processing nor a
// restore from the source may take them.
func TestRestoreTables(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	for _, changelog := range []string{"topic", "source"} {
		t.Run(changelog, func(t *testing.T) {
			b := enginetest.StartBroker(t)
			vars := env(t, b.Addr())
			vars["BILLING_STATUS_CHANGELOG"] = changelog
			base := "http://" + vars["BILLING_HTTP_LISTEN"]
			w := newWorkload(t, registry(t), 3_000, 0)

			ctx, cancel := context.WithCancel(context.Background())
			_, done := runEngine(t, ctx, vars)
			half := len(w.records) / 2
			produceKgo(t, b.Addr(), w.records[:half])
			produceAborted(t, b.Addr(), newerVersions(t, w.records[:half]))
			produceKgo(t, b.Addr(), w.records[half:])
			before := snapshotTables(t, base, w)
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("engine.Run: %v", err)
			}

			none := func(n float64) bool { return n == 0 }
			some := func(n float64) bool { return n > 0 }
			restart := func(step string, statusRestored, totalsRestored func(float64) bool) {
				ctx, cancel := context.WithCancel(context.Background())
				_, done := runEngine(t, ctx, vars)
				defer func() {
					cancel()
					if err := <-done; err != nil {
						t.Errorf("engine.Run: %v", err)
					}
				}()
				after := snapshotTables(t, base, w)
				if len(after) != len(before) {
					t.Fatalf("%s: got %d answers, want %d", step, len(after), len(before))
				}
				for k, v := range before {
					if after[k] != v {
						t.Errorf("%s: %s: got %s, want %s", step, k, after[k], v)
					}
				}
				fams := scrape(t, base+"/metrics")
				for table, want := range map[string]func(float64) bool{"transaction_status": statusRestored, "client_totals": totalsRestored} {
					n := sumOf(fams["billing_table_restored_records_total"], map[string]string{"table": table})
					if !want(n) {
						t.Errorf("%s: %s: %v records restored", step, table, n)
					}
				}
			}
			restart("restart with the local state", none, none)
			if err := os.RemoveAll(filepath.Join(vars["BILLING_DATA_DIR"], "state")); err != nil {
				t.Fatal(err)
			}
			restart("restart without local state", some, some)
			if changelog == "topic" {
				// Switched to the source, the status table's checkpoint
				// (a changelog offset) says nothing of the source: the
				// table is cleared and rebuilt from the transactions topic.
				vars["BILLING_STATUS_CHANGELOG"] = "source"
				restart("restart switched to changelog: source", some, none)
				return
			}
			// Back from the source to a changelog topic that lacks every
			// batch processed meanwhile: refused, with where and why.
			vars["BILLING_STATUS_CHANGELOG"] = "topic"
			ctx3, cancel3 := context.WithCancel(context.Background())
			defer cancel3()
			_, done3 := runEngine(t, ctx3, vars)
			select {
			case err := <-done3:
				if !errors.Is(err, stream.ErrSourceToChangelog) || !strings.Contains(err.Error(), ".yaml:") {
					t.Errorf("engine switched back to changelog: topic: got %v, want the file's line and %v", err, stream.ErrSourceToChangelog)
				}
			case <-time.After(30 * time.Second):
				t.Error("engine switched back to changelog: topic still runs after 30s, want it refused")
			}

			topics := topicNames(t, b.Addr())
			const statusChangelog = "billing-transaction_status-changelog"
			if has := slices.Contains(topics, statusChangelog); has != (changelog == "topic") {
				t.Errorf("topic %s exists: %v, with changelog: %s (topics %v)", statusChangelog, has, changelog, topics)
			}
		})
	}
}

// produceAborted writes recs to the transactions topic in a transaction
// that it then aborts.
func produceAborted(t *testing.T, addr string, recs []*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("transactions"),
		kgo.TransactionalID("tables-test-aborted"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatalf("begin transaction: %v", err)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce in the transaction: %v", err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatalf("abort the transaction: %v", err)
	}
}

// newerVersions returns, for each record, a version of its transaction
// that every table would take if it read it: REFUNDED, another amount,
// updated a day later.
func newerVersions(t *testing.T, recs []*kgo.Record) []*kgo.Record {
	t.Helper()
	reg := registry(t)
	schema, err := reg.Schema("Transaction")
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*kgo.Record, 0, len(recs))
	for _, r := range recs {
		tx, err := reg.Decode(schema, r.Value)
		if err != nil {
			t.Fatal(err)
		}
		tx["status"] = "REFUNDED"
		tx["amount_minor"] = tx["amount_minor"].(int64) + 1
		tx["updated_at"] = tx["updated_at"].(time.Time).Add(24 * time.Hour)
		v, err := schema.Encode(tx)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &kgo.Record{Key: r.Key, Value: v})
	}
	return out
}

// topicNames lists the broker's topics.
func topicNames(t *testing.T, addr string) []string {
	t.Helper()
	client, err := sarama.NewClient([]string{addr}, enginetest.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	topics, err := client.Topics()
	if err != nil {
		t.Fatal(err)
	}
	return topics
}

// runEngine runs the billing pipeline in-process until ctx ends; done
// receives Run's result.
func runEngine(t *testing.T, ctx context.Context, vars map[string]string) (*engine.Engine, <-chan error) {
	t.Helper()
	e, err := engine.New(pipelineFile(t, vars),
		engine.WithProcessor(router.Name, router.New),
		engine.WithLookupEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }))
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	return e, done
}

// expectedTotals computes, from a workload, each client's count per
// status|currency: what client_totals must hold.
func expectedTotals(t *testing.T, reg *avro.Registry, w workload) map[string]map[string]int {
	t.Helper()
	schema, err := reg.Schema("Transaction")
	if err != nil {
		t.Fatal(err)
	}
	dropped := map[string]bool{}
	for _, k := range w.dropped {
		dropped[k] = true
	}
	out := map[string]map[string]int{}
	for _, r := range w.records {
		rec, err := reg.Decode(schema, r.Value)
		if err != nil || dropped[string(r.Key)] {
			continue
		}
		c := rec["client_id"].(string)
		if out[c] == nil {
			out[c] = map[string]int{}
		}
		out[c][rec["status"].(string)+"|"+rec["currency"].(string)]++
	}
	return out
}

// snapshotTables waits until every client's totals match the workload and
// returns the answers for the clients and a sample of transactions.
func snapshotTables(t *testing.T, base string, w workload) map[string]string {
	t.Helper()
	want := expectedTotals(t, registry(t), w)
	out := map[string]string{}
	for client, groups := range want {
		eventually(t, 60*time.Second, func() error {
			code, body, err := getJSON(base + "/api/v1/tables/client_totals/" + client)
			if err != nil || code != http.StatusOK {
				_, l, _ := getJSON(base + "/api/v1/tables/client_totals?limit=100")
				_, st, _ := getJSON(base + "/api/v1/stats")
				return fmt.Errorf("client_totals/%s: %d %v %v\nlist %v\nstats %v", client, code, body, err, l, st)
			}
			got := map[string]int{}
			for k, g := range body["value"].(map[string]any)["groups"].(map[string]any) {
				got[k] = int(g.(map[string]any)["count"].(float64))
			}
			if fmt.Sprint(got) != fmt.Sprint(groups) {
				return fmt.Errorf("client_totals/%s: got %v, want %v", client, got, groups)
			}
			out["client_totals/"+client] = fmt.Sprint(body["value"])
			return nil
		})
	}
	statuses := finalStatuses(t, w)
	for _, id := range sampleKeys(statuses, 50) {
		eventually(t, 30*time.Second, func() error {
			s, err := statusOf(base, id)
			if err == nil && s != statuses[id] {
				err = fmt.Errorf("status of %s: got %s, want %s", id, s, statuses[id])
			}
			out["status/"+id] = s
			return err
		})
	}
	return out
}
