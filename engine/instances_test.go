package engine_test

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/enginetest"
)

// startBrokerProcess runs `engine broker` as its own process, the way
// several instances on one host share the embedded broker.
func startBrokerProcess(t *testing.T, bin string) string {
	t.Helper()
	addr := enginetest.FreeAddr(t)
	cmd := exec.Command(bin, "broker", "-listen", addr, "-data", t.TempDir())
	cmd.Env = append(os.Environ(), "BILLING_LOG_FORMAT=text")
	logf, err := os.CreateTemp(t.TempDir(), "broker-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := os.ReadFile(logf.Name())
		if strings.Contains(string(out), "broker started") {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker did not start:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestThreeInstancesAnswerEveryKey runs three engine instances with one
// application id on `engine broker`: every instance answers every key, by
// forwarding to the owner; after one is SIGKILLed, its partitions move to
// the others, are restored, and every key is still answered. The status
// table is restored from its changelog, or from the transactions topic
// (changelog: source).
func TestThreeInstancesAnswerEveryKey(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test; run without -short")
	}
	bin := enginetest.BuildEngine(t)
	for _, changelog := range []string{"topic", "source"} {
		t.Run(changelog, func(t *testing.T) { threeInstances(t, bin, changelog) })
	}
}

func threeInstances(t *testing.T, bin, changelog string) {
	broker := startBrokerProcess(t, bin)
	w := newWorkload(t, registry(t), 6_000, 0)
	var nodes []*child
	var bases []string
	for i := 0; i < 3; i++ {
		vars := env(t, broker)
		vars["BILLING_STATUS_CHANGELOG"] = changelog
		nodes = append(nodes, startChild(t, bin, vars))
		bases = append(bases, "http://"+vars["BILLING_HTTP_LISTEN"])
	}
	produceKgo(t, broker, w.records)
	want := finalStatuses(t, w)
	sample := sampleKeys(want, 200)

	checkAll := func(alive []string) {
		for _, base := range alive {
			served := map[string]int{}
			for _, id := range sample {
				eventually(t, 90*time.Second, func() error {
					code, body, err := getJSON(base + "/api/v1/transactions/" + id + "/status")
					if err != nil || code != 200 {
						return fmt.Errorf("%s status of %s: %d %v %v", base, id, code, body, err)
					}
					if body["status"] != want[id] {
						return fmt.Errorf("%s status of %s: got %v, want %s", base, id, body["status"], want[id])
					}
					served[body["served_by"].(string)]++
					return nil
				})
			}
			t.Logf("%s answered %d keys, served by %v", base, len(sample), served)
			if len(served) != len(alive) {
				t.Errorf("%s: answers served by %d instances, want all %d", base, len(served), len(alive))
			}
		}
	}
	waitAssigned(t, bases)
	checkAll(bases)
	nodes[2].kill(t)
	waitAssigned(t, bases[:2])
	checkAll(bases[:2])
}

// waitAssigned waits until the instances at bases are ready and share the
// 8 partitions of transactions in the processor's group, each owning some.
func waitAssigned(t *testing.T, bases []string) {
	t.Helper()
	eventually(t, 2*time.Minute, func() error {
		seen := map[float64]bool{}
		for _, base := range bases {
			code, body, err := getJSON(base + "/readyz")
			if err != nil || code != 200 {
				return fmt.Errorf("%s/readyz: %d %v %v", base, code, body, err)
			}
			groups, _ := body["partitions"].(map[string]any)
			processor, _ := groups["billing-processor"].(map[string]any)
			parts, _ := processor["transactions"].([]any)
			if len(parts) == 0 {
				return fmt.Errorf("%s owns no partition of transactions yet", base)
			}
			for _, p := range parts {
				seen[p.(float64)] = true
			}
		}
		if len(seen) != 8 {
			return fmt.Errorf("instances own %d of 8 partitions", len(seen))
		}
		return nil
	})
}

// finalStatuses returns each transaction's status in the workload.
func finalStatuses(t *testing.T, w workload) map[string]string {
	t.Helper()
	reg := registry(t)
	schema, err := reg.Schema("Transaction")
	if err != nil {
		t.Fatal(err)
	}
	dropped := map[string]bool{}
	for _, k := range w.dropped {
		dropped[k] = true
	}
	out := map[string]string{}
	for _, r := range w.records {
		rec, err := reg.Decode(schema, r.Value)
		if err == nil && !dropped[string(r.Key)] {
			out[string(r.Key)] = rec["status"].(string)
		}
	}
	return out
}

// sampleKeys returns n of m's keys, spread evenly over their sorted order,
// the same every call.
func sampleKeys(m map[string]string, n int) []string {
	keys := slices.Sorted(maps.Keys(m))
	if len(keys) <= n {
		return keys
	}
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, keys[i*len(keys)/n])
	}
	return out
}
