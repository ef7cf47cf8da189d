package engine_test

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/enginetest"
)

// child is the engine binary running the billing pipeline as a separate
// process, so that a test can SIGKILL it.
type child struct {
	cmd  *exec.Cmd
	http string
	log  *os.File
}

func startChild(t *testing.T, bin string, vars map[string]string) *child {
	t.Helper()
	cmd := exec.Command(bin, "run", pipelineFile(t, vars))
	cmd.Env = append(os.Environ(), "BILLING_LOG_FORMAT=text")
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logf, err := os.CreateTemp(t.TempDir(), "engine-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start engine: %v", err)
	}
	c := &child{cmd: cmd, http: vars["BILLING_HTTP_LISTEN"], log: logf}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			t.Logf("engine log:\n%s", tail(out, 4000))
		}
	})
	return c
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// consumed returns how many records the child's processor has consumed, or
// -1 while its API does not answer.
func (c *child) consumed() int64 {
	resp, err := http.Get("http://" + c.http + "/api/v1/stats")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var stats map[string]int64
	if json.NewDecoder(resp.Body).Decode(&stats) != nil {
		return -1
	}
	return stats["consumed/processor"]
}

// waitConsumed waits until the child has consumed at least n records.
func (c *child) waitConsumed(t *testing.T, n int64, timeout time.Duration) int64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if got := c.consumed(); got >= n {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("engine did not consume %d records within %s", n, timeout)
	return 0
}

// terminate stops the child with SIGTERM and checks that it exits 0.
func (c *child) terminate(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Wait(); err != nil {
		t.Errorf("engine after SIGTERM: %v, want exit status 0", err)
	}
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill: %v", err)
	}
	_ = c.cmd.Wait()
}

// TestCrashExactlyOnce SIGKILLs the engine process twice in the middle of a
// run and restarts it; afterwards every output exists exactly once and the
// aggregate tables count every transaction exactly once. The status table
// is restored from its changelog, or from the transactions topic
// (changelog: source).
func TestCrashExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test; run without -short")
	}
	bin := enginetest.BuildEngine(t)
	for _, changelog := range []string{"topic", "source"} {
		t.Run(changelog, func(t *testing.T) {
			b := enginetest.StartBroker(t)
			vars := env(t, b.Addr())
			vars["BILLING_STATUS_CHANGELOG"] = changelog
			w := newWorkload(t, registry(t), 20_000, 100)
			produceKgo(t, b.Addr(), w.records)

			for i, at := range []int64{2_000, 9_000} {
				c := startChild(t, bin, vars)
				got := c.waitConsumed(t, at, 60*time.Second)
				c.kill(t)
				t.Logf("kill %d: SIGKILL after %d records consumed", i+1, got)
			}
			c := startChild(t, bin, vars)
			checkOutputs(t, b.Addr(), w)
			// The aggregates count every transaction once: none twice, none
			// lost; the status table answers each one's final status.
			snapshotTables(t, "http://"+vars["BILLING_HTTP_LISTEN"], w)
			c.terminate(t)
		})
	}
}

// TestGracefulShutdownCommits stops the engine with SIGTERM mid-run: it
// exits 0, and a restart finishes the rest with nothing twice.
func TestGracefulShutdownCommits(t *testing.T) {
	if testing.Short() {
		t.Skip("process test; run without -short")
	}
	bin := enginetest.BuildEngine(t)
	b := enginetest.StartBroker(t)
	vars := env(t, b.Addr())
	w := newWorkload(t, registry(t), 10_000, 10)
	produceKgo(t, b.Addr(), w.records)
	c := startChild(t, bin, vars)
	c.waitConsumed(t, 3_000, 60*time.Second)
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("engine after SIGTERM: %v, want exit status 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("engine did not exit within 30s of SIGTERM")
	}
	startChild(t, bin, vars)
	checkOutputs(t, b.Addr(), w)
}
