package engine_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/enginetest"
)

// A graceful stop that cannot finish (the broker is gone for good, so the
// batches in hand can never commit) is cut short by a second SIGTERM: the
// process ends at once, and its log said that it would.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("process test; run without -short")
	}
	bin := enginetest.BuildEngine(t)
	b := newBrokerProcess(t, bin)
	vars := env(t, b.addr)
	w := newWorkload(t, registry(t), 100_000, 0) // still flowing when the broker goes
	c := startChild(t, bin, vars)
	produceKgo(t, b.addr, w.records)
	c.waitUntil(t, "records consumed", c.consumed, 2_000, 60*time.Second)
	_ = b.stop(syscall.SIGKILL) // its exit status is the kill's

	exited := make(chan error, 1)
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go func() { exited <- c.cmd.Wait() }()
	select {
	case err := <-exited:
		t.Fatalf("engine stopped after the first SIGTERM (%v) with the broker gone mid-stream: nothing was left to cut short", err)
	case <-time.After(3 * time.Second):
	}
	if got := c.logCount("a second signal stops at once"); got["a second signal stops at once"] != 1 {
		t.Errorf("the log does not say that a second signal stops at once: %v", got)
	}
	sent := time.Now()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err == nil || !strings.Contains(err.Error(), "terminated") {
			t.Errorf("engine after a second SIGTERM: %v, want it ended by the signal", err)
		}
		t.Logf("engine ended %s after the second SIGTERM", time.Since(sent).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("engine still running 5 s after a second SIGTERM")
	}
}
