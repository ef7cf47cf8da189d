package pluginhost_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/internal/pluginhost"
	"github.com/billing-engine/billing/engine/sdk"
	"github.com/billing-engine/billing/engine/sdk/sdktest"
)

const (
	testPluginPkg = "engine/internal/pluginhost/testdata/testplugin"
	// oldPluginPkg speaks the protocol version before sdk.ProtocolVersion.
	oldPluginPkg = "engine/internal/pluginhost/testdata/oldplugin"
)

// logBuffer is an slog destination safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the log lines that contain every one of subs.
func (b *logBuffer) lines(subs ...string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		ok := l != ""
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

func schemasDir(t testing.TB) string {
	return filepath.Join(enginetest.RepoRoot(t), "schemas")
}

// config is the test plugin's configuration with settings.
func config(t testing.TB, settings map[string]any) sdk.Config {
	return sdk.Config{
		Name: "tp", Pipeline: "p", Stage: "s", Settings: settings,
		SchemasDir: schemasDir(t), Schema: "billing.Transaction",
	}
}

// start starts the test plugin with settings; it is closed when the test
// ends. The log collects everything the host and the plugin logged.
func start(t *testing.T, spec pluginhost.Spec, settings map[string]any, opts ...pluginhost.Option) (*pluginhost.Plugin, *logBuffer) {
	t.Helper()
	if spec.Command == "" {
		spec.Command = enginetest.BuildPlugin(t, testPluginPkg)
	}
	if spec.Name == "" {
		spec.Name = "tp"
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := pluginhost.Start(t.Context(), spec, config(t, settings), append([]pluginhost.Option{pluginhost.WithLogger(log)}, opts...)...)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("host log:\n%s", logs)
		}
	})
	return p, logs
}

// transaction returns the i-th test transaction.
func transaction(i int) map[string]any {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	return map[string]any{
		"transaction_id": "tx-" + strconv.Itoa(i), "client_id": fmt.Sprintf("client-%04d", i%50),
		"amount_minor": int64(100 + i), "currency": "EUR", "status": "APPROVED",
		"description": "order " + strconv.Itoa(i), "created_at": now, "updated_at": now,
		"billed_at": nil, "billing_cycle_id": nil,
	}
}

// records returns n encoded transactions keyed tx-0, tx-1, ...
func records(t testing.TB, n int) []sdk.Record {
	vals := make([]map[string]any, n)
	for i := range vals {
		vals[i] = transaction(i)
	}
	recs := sdktest.Records(t, schemasDir(t), "Transaction", vals...)
	for i := range recs {
		recs[i].Key = []byte("tx-" + strconv.Itoa(i))
	}
	return recs
}

// checkPassed asserts that results pass each record to output unchanged.
func checkPassed(t *testing.T, batch []sdk.Record, results []sdk.Result, output string) {
	t.Helper()
	if len(results) != len(batch) {
		t.Fatalf("got %d results, want %d", len(results), len(batch))
	}
	for i, r := range results {
		if len(r.Emits) != 1 || r.DLQ != "" {
			t.Fatalf("result %d: got %+v, want one emit", i, r)
		}
		e := r.Emits[0]
		if e.Output != output || !bytes.Equal(e.Key, batch[i].Key) || !bytes.Equal(e.Value, batch[i].Value) {
			t.Errorf("result %d: got output %q key %q, want %q %q and the same value", i, e.Output, e.Key, output, batch[i].Key)
		}
	}
}

func TestProcessThroughPlugin(t *testing.T) {
	p, logs := start(t, pluginhost.Spec{}, map[string]any{"tag_field": "client_id"})
	info := p.Info()
	if info.Name != "testplugin" || info.Version != "0.1.0" || !slices.Equal(info.Outputs, []string{"out", "alt"}) {
		t.Errorf("Info: got %+v", info)
	}
	batch := records(t, 300)
	batch[0].Headers = []sdk.Header{{Key: "h", Value: []byte("v")}}
	results, err := p.Process(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	checkPassed(t, batch, results, "out")
	// The tag is the decoded client_id: the plugin saw Record.Data.
	hs := results[0].Emits[0].Headers
	if len(hs) != 2 || hs[0].Key != "h" || hs[1].Key != "tag" || !strings.HasPrefix(string(hs[1].Value), "client-") {
		t.Errorf("headers of result 0: got %+v, want h and a tag with the decoded client_id", hs)
	}
	if got := logs.lines(`msg="test processor configured"`, "plugin=tp", "level=INFO"); len(got) != 1 {
		t.Errorf("the plugin's own log line: got %q, want one line at INFO with plugin=tp\nlog:\n%s", got, logs)
	}
}

func TestEmptyBatch(t *testing.T) {
	p, _ := start(t, pluginhost.Spec{}, nil)
	results, err := p.Process(t.Context(), nil)
	if err != nil || len(results) != 0 {
		t.Errorf("got %v, %v; want no results and no error", results, err)
	}
}

func TestUndecodableRecordGoesToDLQ(t *testing.T) {
	p, _ := start(t, pluginhost.Spec{}, nil)
	batch := records(t, 3)
	batch[1].Value = []byte("not avro")
	results, err := p.Process(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(results[1].DLQ, "decode: ") || len(results[1].Emits) != 0 {
		t.Errorf("result 1: got %+v, want a decode DLQ reason", results[1])
	}
	for _, i := range []int{0, 2} {
		if len(results[i].Emits) != 1 {
			t.Errorf("result %d: got %+v, want it passed", i, results[i])
		}
	}
}

// TestRawProcessorSkipsDecoding: a Processor that says it does not read
// Record.Data (sdk.DataUser) gets every record undecoded, even one that
// would not decode.
func TestRawProcessorSkipsDecoding(t *testing.T) {
	p, _ := start(t, pluginhost.Spec{}, map[string]any{"raw": true})
	batch := records(t, 3)
	batch[1].Value = []byte("not avro")
	results, err := p.Process(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	checkPassed(t, batch, results, "out")
}

func TestStartErrors(t *testing.T) {
	bin := enginetest.BuildPlugin(t, testPluginPkg)
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-exec")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	chatty := filepath.Join(dir, "chatty")
	if err := os.WriteFile(chatty, []byte("#!/bin/sh\necho hello there\nexec sleep 5\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sum := fileSum(t, bin)
	zeros := strings.Repeat("0", 64)
	for _, tc := range []struct {
		name     string
		spec     pluginhost.Spec
		settings map[string]any
		want     error
		contains []string
	}{
		{"missing", pluginhost.Spec{Command: filepath.Join(dir, "nope")}, nil, pluginhost.ErrCommand, []string{"nope: no such file"}},
		{"not executable", pluginhost.Spec{Command: notExec}, nil, pluginhost.ErrCommand, []string{"not executable"}},
		{"directory", pluginhost.Spec{Command: dir}, nil, pluginhost.ErrCommand, []string{"not a regular file"}},
		{"checksum", pluginhost.Spec{Command: bin, SHA256: zeros}, nil, pluginhost.ErrChecksum, []string{"has SHA-256 " + sum, "want " + zeros}},
		{"exits at once", pluginhost.Spec{Command: "/bin/true"}, nil, pluginhost.ErrHandshake, []string{"/bin/true printed no handshake", "is it a plugin"}},
		{"not a plugin", pluginhost.Spec{Command: chatty}, nil, pluginhost.ErrHandshake, []string{`printed "hello there" instead of the handshake`, "is it a plugin"}},
		{"old protocol", pluginhost.Spec{Command: enginetest.BuildPlugin(t, oldPluginPkg)}, nil, pluginhost.ErrHandshake,
			[]string{fmt.Sprintf("Plugin version: %d, Client versions: [%d]", sdk.ProtocolVersion-1, sdk.ProtocolVersion)}},
		{"configure", pluginhost.Spec{Command: bin}, map[string]any{"reject": true}, pluginhost.ErrConfigure, []string{"configure: reject: the test asked for a configuration error"}},
		{"bad setting", pluginhost.Spec{Command: bin}, map[string]any{"delay": "soon"}, pluginhost.ErrConfigure, []string{"configure: delay: time: invalid duration"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Name = "tp"
			p, err := pluginhost.Start(t.Context(), tc.spec, config(t, tc.settings), pluginhost.WithStartTimeout(10*time.Second))
			if err == nil {
				p.Close()
				t.Fatalf("got no error, want %v", tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v, want an error wrapping %v", err, tc.want)
			}
			var he *pluginhost.Error
			if !errors.As(err, &he) || he.Plugin != "tp" {
				t.Errorf("got %T %v, want a *pluginhost.Error for plugin tp", err, err)
			}
			for _, s := range append(tc.contains, `plugin "tp"`) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestChecksumPinned(t *testing.T) {
	bin := enginetest.BuildPlugin(t, testPluginPkg)
	p, _ := start(t, pluginhost.Spec{Command: bin, SHA256: strings.ToUpper(fileSum(t, bin))}, nil)
	if _, err := p.Process(t.Context(), records(t, 1)); err != nil {
		t.Fatal(err)
	}
}

func fileSum(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestPluginErrorDoesNotRestart(t *testing.T) {
	p, logs := start(t, pluginhost.Spec{}, map[string]any{"fail_key": "tx-1"})
	_, err := p.Process(t.Context(), records(t, 3))
	if err == nil || !strings.Contains(err.Error(), "record tx-1: failing as asked") {
		t.Fatalf("got %v, want the plugin's error", err)
	}
	if errors.Is(err, pluginhost.ErrPluginShutdown) {
		t.Errorf("got %v: a plugin's own error must not count as a shutdown", err)
	}
	if p.Restarts() != 0 || len(logs.lines("plugin restarting")) != 0 {
		t.Errorf("restarts: got %d, want 0", p.Restarts())
	}
}

// processUntilOK calls Process until it succeeds, as the engine's chain
// retries a failed batch, and returns the errors on the way.
func processUntilOK(t *testing.T, p *pluginhost.Plugin, batch []sdk.Record) ([]sdk.Result, []error) {
	t.Helper()
	var errs []error
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		results, err := p.Process(ctx, batch)
		cancel()
		if err == nil {
			return results, errs
		}
		errs = append(errs, err)
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("Process did not succeed within 30s: %v", errors.Join(errs...))
	return nil, nil
}

func TestCrashRestarts(t *testing.T) {
	p, logs := start(t, pluginhost.Spec{}, map[string]any{"crash_key": "tx-2", "marker_dir": t.TempDir()})
	batch := records(t, 10)
	results, errs := processUntilOK(t, p, batch)
	checkPassed(t, batch, results, "out")
	if len(errs) != 1 || !errors.Is(errs[0], pluginhost.ErrPluginShutdown) {
		t.Errorf("errors: got %v, want one wrapping ErrPluginShutdown", errs)
	}
	if p.Restarts() != 1 {
		t.Errorf("restarts: got %d, want 1", p.Restarts())
	}
	if got := logs.lines("level=WARN", `msg="plugin restarting"`, "plugin=tp", "process exited"); len(got) != 1 {
		t.Errorf("restart warnings: got %q, want one naming the plugin and the reason\nlog:\n%s", got, logs)
	}
	if got := logs.lines("level=ERROR", "panic: testproc: crashing as asked", "plugin=tp"); len(got) != 1 {
		t.Errorf("the plugin's stderr line: got %q, want it in the log", got)
	}
}

func TestHangRestarts(t *testing.T) {
	p, logs := start(t, pluginhost.Spec{Timeout: 500 * time.Millisecond}, map[string]any{"hang_key": "tx-4", "marker_dir": t.TempDir()})
	batch := records(t, 10)
	begin := time.Now()
	results, errs := processUntilOK(t, p, batch)
	checkPassed(t, batch, results, "out")
	if len(errs) != 1 || !errors.Is(errs[0], pluginhost.ErrPluginShutdown) || !strings.Contains(errs[0].Error(), "hung") {
		t.Errorf("errors: got %v, want one hung ErrPluginShutdown", errs)
	}
	if took := time.Since(begin); took > 10*time.Second {
		t.Errorf("recovery took %s", took)
	}
	if got := logs.lines("level=WARN", `msg="plugin restarting"`, "plugin=tp", "hung: no answer after"); len(got) != 1 {
		t.Errorf("restart warnings: got %q, want one naming the plugin and the hang\nlog:\n%s", got, logs)
	}
}

// pidOf reads the pid the test plugin wrote at Configure, waiting for a
// pid other than not.
func pidOf(t *testing.T, file string, not int) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(file)
		if pid, err := strconv.Atoi(string(b)); err == nil && pid != not {
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no new pid in %s", file)
	return 0
}

func TestSIGKILLRestartsWithBackoff(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	p, logs := start(t, pluginhost.Spec{}, map[string]any{"pid_file": pidFile})
	batch := records(t, 5)
	pid := 0
	for i := range 2 { // two kills in a row: the backoff doubles
		// Kill the instance the host runs: one killed while the host
		// still configures it is a failed launch, retried at once.
		waitInstalled(t, logs, i)
		pid = pidOf(t, pidFile, pid)
		sigkill(t, pid)
		if _, err := p.Process(t.Context(), batch); !errors.Is(err, pluginhost.ErrPluginShutdown) {
			t.Fatalf("kill %d: got %v, want ErrPluginShutdown", i+1, err)
		}
	}
	results, _ := processUntilOK(t, p, batch)
	checkPassed(t, batch, results, "out")
	got := logs.lines(`msg="plugin restarting"`, "plugin=tp")
	if len(got) != 2 || !strings.Contains(got[0], "backoff=100ms") || !strings.Contains(got[1], "backoff=200ms") {
		t.Errorf("restart warnings: got %q, want two, with backoff 100ms then 200ms", got)
	}
	if n := p.Restarts(); n != 2 {
		t.Errorf("restarts: got %d, want 2", n)
	}
}

// waitInstalled waits until the host has installed n restarted instances.
func waitInstalled(t *testing.T, logs *logBuffer, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(logs.lines(`msg="plugin restarted"`, "plugin=tp")) < n {
		if time.Now().After(deadline) {
			t.Fatalf("restart %d not installed after 20s\nlog:\n%s", n, logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sigkill kills pid and waits until it is gone (reaped by go-plugin).
func sigkill(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still there 10s after SIGKILL", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestConcurrentCallsShareOneRestart kills the plugin under calls from
// several goroutines: each call eventually succeeds, and the plugin is
// restarted once.
func TestConcurrentCallsShareOneRestart(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	p, _ := start(t, pluginhost.Spec{}, map[string]any{"pid_file": pidFile, "delay": "20ms"})
	batch := records(t, 50)
	var wg sync.WaitGroup
	killed := make(chan struct{})
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if i == 5 && g == 0 {
					if err := syscall.Kill(pidOf(t, pidFile, 0), syscall.SIGKILL); err != nil {
						t.Error(err)
					}
					close(killed)
				}
				results, _ := processUntilOK(t, p, batch)
				if len(results) != len(batch) {
					t.Errorf("goroutine %d call %d: %d results", g, i, len(results))
				}
			}
		}()
	}
	wg.Wait()
	<-killed
	if n := p.Restarts(); n != 1 {
		t.Errorf("restarts: got %d, want 1", n)
	}
}

func TestCloseStopsTheProcess(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	p, _ := start(t, pluginhost.Spec{}, map[string]any{"pid_file": pidFile})
	pid := pidOf(t, pidFile, 0)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("after Close, signal 0 to pid %d: got %v, want ESRCH", pid, err)
	}
	if _, err := p.Process(t.Context(), records(t, 1)); !errors.Is(err, pluginhost.ErrClosed) {
		t.Errorf("Process after Close: got %v, want ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCloseDuringRestart(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	p, _ := start(t, pluginhost.Spec{}, map[string]any{"pid_file": pidFile}, pluginhost.WithBackoff(time.Hour, time.Hour))
	sigkill(t, pidOf(t, pidFile, 0))
	if _, err := p.Process(t.Context(), records(t, 1)); !errors.Is(err, pluginhost.ErrPluginShutdown) {
		t.Fatalf("got %v, want ErrPluginShutdown", err)
	}
	waiting := make(chan error, 1)
	go func() {
		_, err := p.Process(context.Background(), records(t, 1))
		waiting <- err
	}()
	time.Sleep(50 * time.Millisecond)
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return while a restart waited out its backoff")
	}
	if err := <-waiting; !errors.Is(err, pluginhost.ErrClosed) {
		t.Errorf("the waiting call: got %v, want ErrClosed", err)
	}
}

func ExampleStart() {
	// The engine does this for a stage whose plugin has a command.
	p, err := pluginhost.Start(context.Background(), pluginhost.Spec{Name: "x", Command: "/no/such/plugin"}, sdk.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	// Output: pluginhost: plugin "x": command /no/such/plugin: no such file
}
