package bench

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Child is the process a scenario measures: the engine binary, or the
// ceiling. It answers GET /api/v1/stats with its counters by name, as the
// engine does. Its output goes to a file, printed when the benchmark fails
// or BENCH_LOG is set.
type Child struct {
	cmd    *exec.Cmd
	api    string // http://host:port
	name   string
	logf   string
	exited chan struct{}
	client *http.Client
}

// StartChild starts bin with args and the environment of the benchmark
// without its BILLING_ settings, plus env; listen is where the child's API
// answers. The child is killed, if still running, when the benchmark ends.
func StartChild(tb testing.TB, bin string, args []string, env map[string]string, listen string) *Child {
	tb.Helper()
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BILLING_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logf, err := os.CreateTemp(tb.TempDir(), "child-*.log")
	if err != nil {
		tb.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	c := &Child{cmd: cmd, api: "http://" + listen, name: filepath.Base(bin), logf: logf.Name(),
		exited: make(chan struct{}), client: &http.Client{Timeout: 2 * time.Second}}
	go func() { _ = cmd.Wait(); close(c.exited) }()
	tb.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			_ = cmd.Process.Kill()
			<-c.exited
		}
		if tb.Failed() || os.Getenv("BENCH_LOG") != "" {
			out, _ := os.ReadFile(c.logf)
			if len(out) > 4000 {
				out = out[len(out)-4000:]
			}
			tb.Logf("%s log (the end):\n%s", c.name, out)
		}
	})
	return c
}

// Pid is the child's process id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// API is the base URL of the child's API: http://host:port.
func (c *Child) API() string { return c.api }

// Stats reads the child's counters.
func (c *Child) Stats() (map[string]int64, error) {
	resp, err := c.client.Get(c.api + "/api/v1/stats")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var snap map[string]int64
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		return nil, err
	}
	return snap, nil
}

// WaitFor reads the child's counters every 5 ms until ok reports true, and
// fails the benchmark when the child exits or timeout passes first.
func (c *Child) WaitFor(tb testing.TB, timeout time.Duration, ok func(map[string]int64) bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	var last map[string]int64
	for {
		if snap, err := c.Stats(); err == nil {
			last = snap
			if ok(snap) {
				return
			}
		}
		select {
		case <-c.exited:
			tb.Fatalf("%s exited: %s", c.name, c.cmd.ProcessState)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not done after %s; counters %v", c.name, timeout, last)
		}
	}
}

// Stop ends the child with SIGTERM, as an operator would, and waits for it;
// it fails the benchmark when the child does not exit 0 within a minute.
func (c *Child) Stop(tb testing.TB) {
	tb.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(time.Minute):
		_ = c.cmd.Process.Kill()
		<-c.exited
		tb.Errorf("%s did not exit within 1m of SIGTERM", c.name)
		return
	}
	if !c.cmd.ProcessState.Success() {
		tb.Errorf("%s after SIGTERM: %s, want exit status 0", c.name, c.cmd.ProcessState)
	}
}

// Throughput is what Child.Throughput measured.
type Throughput struct {
	// Rate is records/s.
	Rate float64
	// CPU is the CPU time the child and its child processes spent; negative
	// when /proc cannot tell.
	CPU time.Duration
}

// Throughput waits until the counter first is above 0 (the first record
// consumed), then until each of the counters done (see Sum) reaches n and
// extra, when not nil, reports true. It returns n over the time between,
// and the CPU time the child and its child processes spent in between.
// progress, when not nil, sees every reading of the counters after the
// first record.
func (c *Child) Throughput(tb testing.TB, first string, done []string, n int, progress func(map[string]int64), extra func() bool) Throughput {
	tb.Helper()
	c.WaitFor(tb, 2*time.Minute, func(snap map[string]int64) bool { return snap[first] > 0 })
	start := time.Now()
	cpu0, err0 := TreeCPU(c.Pid())
	counted := false
	c.WaitFor(tb, 10*time.Minute, func(snap map[string]int64) bool {
		if progress != nil {
			progress(snap)
		}
		for i := 0; !counted && i < len(done); i++ {
			if Sum(snap, done[i]) < int64(n) {
				return false
			}
		}
		counted = true
		return extra == nil || extra()
	})
	elapsed := time.Since(start)
	cpu1, err1 := TreeCPU(c.Pid())
	t := Throughput{Rate: float64(n) / elapsed.Seconds(), CPU: -1}
	if err := errors.Join(err0, err1); err != nil {
		tb.Logf("%s: CPU time: %v", c.name, err)
	} else {
		t.CPU = CPUSince(cpu0, cpu1)
	}
	return t
}

// MedianRun returns the run of median records/s (of an even count, the
// slower of the middle two).
func MedianRun(runs []Throughput) Throughput {
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b Throughput) int { return cmp.Compare(a.Rate, b.Rate) })
	return sorted[(len(sorted)-1)/2]
}

// Sum returns the counter key of snap or, for a key ending in "/", the sum
// of the counters it prefixes ("produced/processor/branch/": every topic
// of the branch stage).
func Sum(snap map[string]int64, key string) int64 {
	if !strings.HasSuffix(key, "/") {
		return snap[key]
	}
	var n int64
	for k, v := range snap {
		if strings.HasPrefix(k, key) {
			n += v
		}
	}
	return n
}
