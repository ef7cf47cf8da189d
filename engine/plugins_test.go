package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/billing-engine/billing/engine"
	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/plugins/branch/router"
)

// testPlugin is the host's faulty no-op plugin: see
// engine/internal/testproc for its settings.
const testPlugin = "engine/internal/pluginhost/testdata/testplugin"

// syncBuffer collects the engine's log.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// grep returns the lines of the log that match every pattern.
func (b *syncBuffer) grep(patterns ...string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		ok := l != ""
		for _, p := range patterns {
			ok = ok && regexp.MustCompile(p).MatchString(l)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// pluginPipeline is a pipeline file with one plugin stage whose output
// "out" (or the example's "high") goes to a topic; records passed on to
// the next stage reach a default branch.
var pluginPipeline = template.Must(template.New("p").Parse(`version: 1
application_id: plugtest
data_dir: {{.DataDir}}
schemas: {{.Schemas}}
kafka:
  brokers: {{.Broker}}
  partitions: 8
http:
  listen: {{.HTTP}}
plugins:
  {{.Plugin}}:
    command: {{.Command}}
    timeout: {{.Timeout}}
    config: {{.Config}}
pipelines:
  - name: plugged
    source: {topic: in, schema: Transaction, max_batch: {{.MaxBatch}}}
    stages:
      - name: stage
        plugin: {{.Plugin}}
        outputs: {{.Outputs}}
    branches:
      - {name: rest, default: true, to: rest}
    errors: {retries: 5, backoff: 100ms, dlq: in.dlq}
`))

type pipelineVars struct {
	DataDir, Schemas, Broker, HTTP   string
	Plugin, Command, Timeout, Config string
	Outputs                          string
	MaxBatch                         int
}

// writePipeline writes a pipeline file for plugin into a temporary
// directory and returns its path.
func writePipeline(t *testing.T, broker string, v pipelineVars) string {
	t.Helper()
	dir := t.TempDir()
	v.DataDir, v.Schemas, v.Broker, v.HTTP = filepath.Join(dir, "data"), filepath.Join(enginetest.RepoRoot(t), "schemas"), broker, enginetest.FreeAddr(t)
	if v.Timeout == "" {
		v.Timeout = "30s"
	}
	if v.MaxBatch == 0 {
		v.MaxBatch = 500
	}
	if v.Outputs == "" {
		v.Outputs = "{out: out}"
	}
	var b bytes.Buffer
	if err := pluginPipeline.Execute(&b, v); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runFile runs the pipeline file in-process until the test ends, logging
// into the returned buffer.
func runFile(t *testing.T, path string) (*engine.Engine, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	e, err := engine.New(path, engine.WithProcessor(router.Name, router.New),
		engine.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine.Run: %v", err)
		}
		if t.Failed() {
			t.Logf("engine log (tail):\n%s", tail([]byte(logs.String()), 6000))
		}
	})
	select {
	case <-e.Ready():
	case err := <-done:
		done <- nil // for the cleanup
		t.Fatalf("engine stopped at start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("engine not ready after 60s")
	}
	return e, logs
}

// produceTransactions writes n transactions keyed k-00000, k-00001, ...
// to topic, with amount_minor = amount(i), and returns their keys.
func produceTransactions(t *testing.T, addr, topic string, n int, amount func(int) int64) []string {
	t.Helper()
	schema, err := registry(t).Schema("Transaction")
	if err != nil {
		t.Fatal(err)
	}
	gen := engine.NewTxGen(11, 50, "plug")
	keys := make([][]byte, n)
	values := make([][]byte, n)
	names := make([]string, n)
	for i := range n {
		tx := gen.Next()
		tx["amount_minor"] = amount(i)
		names[i] = fmt.Sprintf("k-%05d", i)
		keys[i] = []byte(names[i])
		if values[i], err = schema.Encode(tx); err != nil {
			t.Fatal(err)
		}
	}
	enginetest.Produce(t, addr, topic, keys, values)
	return names
}

// checkExactlyOnce asserts that topic holds each key exactly once and
// nothing else, read_committed.
func checkExactlyOnce(t *testing.T, addr, topic string, keys []string) []enginetest.Record {
	t.Helper()
	got := enginetest.ReadAll(t, addr, topic, len(keys), 3*time.Second, 3*time.Minute)
	counts := map[string]int{}
	for _, r := range got {
		counts[string(r.Key)]++
	}
	bad := 0
	for _, k := range keys {
		if counts[k] != 1 {
			if bad < 5 {
				t.Errorf("%s: key %s seen %d times, want 1", topic, k, counts[k])
			}
			bad++
		}
		delete(counts, k)
	}
	if bad > 0 || len(counts) > 0 || len(got) != len(keys) {
		t.Errorf("%s: got %d records, want %d; %d keys not exactly once, %d unexpected keys", topic, len(got), len(keys), bad, len(counts))
	}
	return got
}

func checkEmpty(t *testing.T, addr, topic string) {
	t.Helper()
	if got := enginetest.ReadAll(t, addr, topic, 0, 2*time.Second, 30*time.Second); len(got) > 0 {
		t.Errorf("%s: got %d records, want none; first: %s %v", topic, len(got), got[0].Key, got[0].Headers)
	}
}

func readPid(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestPluginKilledMidRun SIGKILLs an out-of-process plugin in the middle
// of a 10,000-record run: the engine restarts it and retries the batches
// it failed, and every record reaches the output exactly once.
func TestPluginKilledMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("process test; run without -short")
	}
	bin := enginetest.BuildPlugin(t, testPlugin)
	b := enginetest.StartBroker(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	path := writePipeline(t, b.Addr(), pipelineVars{
		Plugin: "faulty", Command: bin, MaxBatch: 50,
		Config: fmt.Sprintf("{pid_file: %q, delay: 40ms}", pidFile),
	})
	keys := produceTransactions(t, b.Addr(), "in", 10_000, func(int) int64 { return 500 })
	e, logs := runFile(t, path)
	deadline := time.Now().Add(2 * time.Minute)
	for e.Stats().Snapshot()["consumed/plugged"] < 2_000 {
		if time.Now().After(deadline) {
			t.Fatal("the pipeline did not consume 2000 records within 2m")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := syscall.Kill(readPid(t, pidFile), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	at := e.Stats().Snapshot()["consumed/plugged"]
	t.Logf("SIGKILL after %d of 10000 records consumed", at)
	if at >= 10_000 {
		t.Error("the kill came after the run: slow the plugin down")
	}
	checkExactlyOnce(t, b.Addr(), "out", keys)
	checkEmpty(t, b.Addr(), "in.dlq")
	if got := logs.grep(`level=WARN`, `msg="plugin restarting"`, `plugin=faulty`, `reason="process exited`); len(got) != 1 {
		t.Errorf("restart warnings: got %q, want one naming the plugin and the reason", got)
	} else {
		t.Log(got[0])
	}
}

// TestPluginHangsOnce makes the plugin hang, deaf to its context, on the
// batch holding one record: the call times out, the plugin is killed and
// restarted, and the batch is retried on the new process.
func TestPluginHangsOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("process test; run without -short")
	}
	bin := enginetest.BuildPlugin(t, testPlugin)
	b := enginetest.StartBroker(t)
	path := writePipeline(t, b.Addr(), pipelineVars{
		Plugin: "sleepy", Command: bin, Timeout: "2s", MaxBatch: 100,
		Config: fmt.Sprintf("{hang_key: k-01234, marker_dir: %q}", t.TempDir()),
	})
	keys := produceTransactions(t, b.Addr(), "in", 3_000, func(int) int64 { return 500 })
	_, logs := runFile(t, path)
	checkExactlyOnce(t, b.Addr(), "out", keys)
	checkEmpty(t, b.Addr(), "in.dlq")
	if got := logs.grep(`level=WARN`, `msg="plugin restarting"`, `plugin=sleepy`, `reason="hung: no answer after 2`); len(got) != 1 {
		t.Errorf("restart warnings: got %q, want one naming the plugin and the hang", got)
	} else {
		t.Log(got[0])
	}
}

// TestUnavailableIsWaitedOut runs a plugin whose dependency is down for
// longer than the stage's five retries last: the batches wait for it, and
// nothing is dead-lettered or lost.
func TestUnavailableIsWaitedOut(t *testing.T) {
	if testing.Short() {
		t.Skip("process test; run without -short")
	}
	bin := enginetest.BuildPlugin(t, testPlugin)
	b := enginetest.StartBroker(t)
	path := writePipeline(t, b.Addr(), pipelineVars{
		Plugin: "flaky", Command: bin, MaxBatch: 100, Config: "{unavailable_for: 7s}",
	})
	keys := produceTransactions(t, b.Addr(), "in", 1_000, func(int) int64 { return 500 })
	_, logs := runFile(t, path)
	checkExactlyOnce(t, b.Addr(), "out", keys)
	checkEmpty(t, b.Addr(), "in.dlq")
	waits := logs.grep(`level=WARN`, `msg="stage failed; retrying batch"`, `down as asked`)
	most := 0
	for _, l := range waits {
		if i := strings.Index(l, "attempt="); i >= 0 {
			var n int
			fmt.Sscanf(l[i+len("attempt="):], "%d", &n)
			most = max(most, n)
		}
	}
	if most <= 6 {
		t.Errorf("most attempts on one batch: %d; want more than the 5 retries (1+5 attempts) the stage allows for other errors", most)
	}
}

// TestWaitingBatchIsLeftOnShutdown stops the engine while every batch
// waits for an unavailable dependency: nothing is dead-lettered or
// committed, and an engine started with the dependency back processes
// every record once.
func TestWaitingBatchIsLeftOnShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("process test; run without -short")
	}
	bin := enginetest.BuildPlugin(t, testPlugin)
	b := enginetest.StartBroker(t)
	keys := produceTransactions(t, b.Addr(), "in", 1_000, func(int) int64 { return 500 })
	down := writePipeline(t, b.Addr(), pipelineVars{Plugin: "flaky", Command: bin, MaxBatch: 100, Config: "{unavailable_for: 1h}"})
	e, err := engine.New(down, engine.WithProcessor(router.Name, router.New), engine.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	eventually(t, 60*time.Second, func() error {
		// Batches are counted as consumed once committed; these wait, so
		// watch for their failed attempts instead.
		if n := e.Stats().Snapshot()["retries/plugged/stage"]; n == 0 {
			return fmt.Errorf("no batch has reached the plugin yet")
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond) // the batches are waiting
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("engine.Run: %v", err)
	}
	checkEmpty(t, b.Addr(), "in.dlq")
	checkEmpty(t, b.Addr(), "out")

	up := writePipeline(t, b.Addr(), pipelineVars{Plugin: "flaky", Command: bin, MaxBatch: 100, Config: "{}"})
	runFile(t, up)
	checkExactlyOnce(t, b.Addr(), "out", keys)
	checkEmpty(t, b.Addr(), "in.dlq")
}

// TestExamplePluginInPipeline builds the tagger from
// the README's "Writing a plugin" and runs it as a stage.
func TestExamplePluginInPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("process test; run without -short")
	}
	bin := enginetest.BuildPlugin(t, "examples/plugins/tagger")
	b := enginetest.StartBroker(t)
	path := writePipeline(t, b.Addr(), pipelineVars{
		Plugin: "tagger", Command: bin, Config: "{threshold: 100000}", Outputs: "{high: high}",
	})
	amount := func(i int) int64 { return int64(i%4) * 60_000 } // 0, 60000, 120000, 180000
	keys := produceTransactions(t, b.Addr(), "in", 1_000, amount)
	var high, rest []string
	for i, k := range keys {
		if amount(i) >= 100_000 {
			high = append(high, k)
		} else {
			rest = append(rest, k)
		}
	}
	_, logs := runFile(t, path)
	for topic, want := range map[string]struct {
		keys []string
		band string
	}{"high": {high, "high"}, "rest": {rest, "normal"}} {
		for _, r := range checkExactlyOnce(t, b.Addr(), topic, want.keys) {
			if r.Headers["amount-band"] != want.band {
				t.Errorf("%s: record %s has amount-band %q, want %q", topic, r.Key, r.Headers["amount-band"], want.band)
				break
			}
		}
	}
	checkEmpty(t, b.Addr(), "in.dlq")
	if got := logs.grep(`msg="tagger configured"`, `plugin=tagger`, `threshold=100000`); len(got) == 0 {
		t.Error("the plugin's own log line is not in the engine log")
	}
}

// TestValidateStartsPlugins checks that validation starts each plugin,
// configures it, and reports what failed at file:line:column.
func TestValidateStartsPlugins(t *testing.T) {
	bin := enginetest.BuildPlugin(t, testPlugin)
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	src := fmt.Sprintf(`version: 1
schemas: %s
plugins:
  picky:
    command: %s
    config: {reject: true}
  notaplugin:
    command: /bin/true
  fine:
    command: %s
pipelines:
  - name: a
    source: {topic: in, schema: Transaction}
    stages:
      - name: s1
        plugin: picky
      - name: s2
        plugin: notaplugin
      - name: s3
        plugin: fine
        outputs: {out: o, nope: n}
`, filepath.Join(enginetest.RepoRoot(t), "schemas"), bin, bin)
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	err := engine.Validate(file)
	if err == nil {
		t.Fatal("got no error")
	}
	want := []string{
		file + `:7:3: plugin "notaplugin": handshake failed: /bin/true printed no handshake`,
		file + `:15:9: plugin "picky": configure: reject: the test asked for a configuration error (pipeline a, stage s1)`,
		file + `:19:9: plugin "fine": pipeline a, stage s3: output "nope": the plugin emits only out, alt`,
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("problem %d:\n got %s\nwant %s...", i+1, lines[i], w)
		}
	}
	if _, err := engine.New(file); err == nil {
		t.Error("engine.New: got no error for the same file")
	}
	var target interface{ Unwrap() []error }
	if !errors.As(err, &target) {
		t.Errorf("got %T, want a list of problems", err)
	}
}

// TestBranchPluginOutOfProcess runs a pipeline's branches through the
// branch router served by plugins/branch instead of in-process.
func TestBranchPluginOutOfProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("process test; run without -short")
	}
	bin := enginetest.BuildPlugin(t, "plugins/branch")
	b := enginetest.StartBroker(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "branch.yaml")
	src := fmt.Sprintf(`version: 1
application_id: branchtest
data_dir: %s
schemas: %s
kafka: {brokers: %s}
http: {listen: %s}
plugins:
  branch: {command: %s}
pipelines:
  - name: routed
    source: {topic: in, schema: Transaction}
    branches:
      - {name: big, when: 'amount_minor >= 1000', to: big}
      - {name: small, default: true, to: small}
`, filepath.Join(dir, "data"), filepath.Join(enginetest.RepoRoot(t), "schemas"), b.Addr(), enginetest.FreeAddr(t), bin)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	amount := func(i int) int64 { return int64(i%2) * 5000 }
	keys := produceTransactions(t, b.Addr(), "in", 1_000, amount)
	_, logs := runFile(t, path)
	var big, small []string
	for i, k := range keys {
		if amount(i) >= 1000 {
			big = append(big, k)
		} else {
			small = append(small, k)
		}
	}
	checkExactlyOnce(t, b.Addr(), "big", big)
	checkExactlyOnce(t, b.Addr(), "small", small)
	if got := logs.grep(`msg="plugin started"`, `plugin=branch`, `command=`+regexp.QuoteMeta(bin)); len(got) != 1 {
		t.Errorf("plugin start: got %q, want one line", got)
	}
}
