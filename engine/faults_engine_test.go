package engine_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/store"
)

// The fault tests of this file run the engine and the embedded broker as
// real processes and break them the way production breaks them: the broker
// restarted (killed or stopped) under a running engine, and the engine
// SIGKILLed again and again while the whole billing flow runs. Each ends by
// counting every output: nothing lost, nothing twice.

// brokerProcess is `engine broker` running as its own process on a fixed
// address and data dir, so that a test can kill it and start it again on
// the same log, as a crash and restart of a real broker would.
type brokerProcess struct {
	t       *testing.T
	bin     string
	addr    string
	dataDir string

	cmd  *exec.Cmd
	done chan struct{} // closed once cmd has exited; err is then its result
	err  error
	logs []string // one file per start
}

// newBrokerProcess starts the broker process on a free loopback port with
// a fresh data dir; it is stopped when the test ends.
func newBrokerProcess(t *testing.T, bin string) *brokerProcess {
	t.Helper()
	b := &brokerProcess{t: t, bin: bin, addr: enginetest.FreeAddr(t), dataDir: t.TempDir()}
	t.Cleanup(func() {
		if b.cmd != nil {
			b.stop(syscall.SIGTERM)
		}
		if t.Failed() {
			for _, l := range b.logs {
				out, _ := os.ReadFile(l)
				t.Logf("broker log %s:\n%s", filepath.Base(l), tail(out, 3000))
			}
		}
	})
	b.start()
	return b
}

// start starts the broker on its address and data dir and waits until it
// says it listens.
func (b *brokerProcess) start() {
	t := b.t
	t.Helper()
	cmd := exec.Command(b.bin, "broker", "-listen", b.addr, "-data", b.dataDir)
	cmd.Env = append(os.Environ(), "BILLING_LOG_FORMAT=text")
	logf, err := os.CreateTemp(t.TempDir(), "broker-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start broker: %v", err)
	}
	b.cmd, b.done, b.err = cmd, make(chan struct{}), nil
	b.logs = append(b.logs, logf.Name())
	go func(done chan struct{}) {
		b.err = cmd.Wait()
		close(done)
	}(b.done)
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, _ := os.ReadFile(logf.Name())
		if strings.Contains(string(out), "broker started") {
			return
		}
		select {
		case <-b.done:
			t.Fatalf("broker exited at start (%v):\n%s", b.err, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker did not start within 60s:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends sig to the broker and waits for it to exit; it returns how
// the process ended.
func (b *brokerProcess) stop(sig syscall.Signal) error {
	b.t.Helper()
	_ = b.cmd.Process.Signal(sig)
	select {
	case <-b.done:
	case <-time.After(60 * time.Second):
		b.t.Errorf("broker still running 60s after %s; killing it", sig)
		_ = b.cmd.Process.Kill()
		<-b.done
	}
	b.cmd = nil
	return b.err
}

// running reports whether the child process has not exited. A child that
// exited and was not waited for yet is a zombie, so its state is read
// from /proc.
func (c *child) running() bool {
	if c.cmd.ProcessState != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

// stats returns the child's counters, or nil while its API does not answer.
func (c *child) stats() map[string]int64 {
	resp, err := http.Get("http://" + c.http + "/api/v1/stats")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var s map[string]int64
	if json.NewDecoder(resp.Body).Decode(&s) != nil {
		return nil
	}
	return s
}

// consumedAll sums what every pipeline of the child has consumed (and
// committed) since it started, or -1 while its API does not answer.
func (c *child) consumedAll() int64 {
	s := c.stats()
	if s == nil {
		return -1
	}
	var n int64
	for k, v := range s {
		if strings.HasPrefix(k, "consumed/") {
			n += v
		}
	}
	return n
}

// waitUntil polls what until it reaches at least n, failing the test at
// timeout or as soon as the child exits.
func (c *child) waitUntil(t *testing.T, what string, get func() int64, n int64, timeout time.Duration) int64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	got := int64(-1)
	for {
		if got = get(); got >= n {
			return got
		}
		if !c.running() {
			t.Fatalf("engine exited while waiting for %s to reach %d (at %d)", what, n, got)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not reach %d within %s (at %d)", what, n, timeout, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// billingGroups is how many consumer groups pipelines/billing.yaml runs:
// processor, its two repartitioned tables, store, billing, credits, notify
// and notify-invoices.
const billingGroups = 8

// ownsEverything returns how many of the child's consumer groups own every
// partition of their topics (8) while it is ready, or -1 while it is not.
//
// The fault test kills an engine only once this reaches billingGroups, or
// before its pipelines join at all: the embedded broker (kfake) never
// expires a member whose JoinGroup answer it could not deliver (the
// member's process was killed while it waited in the join). Such a member
// keeps its share of the partitions, unconsumed, until another member
// joins; and each join restarts the deadline that would drop it.
func (c *child) ownsEverything() int64 {
	resp, err := http.Get("http://" + c.http + "/readyz")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var body struct {
		Partitions map[string]map[string][]int32 `json:"partitions"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		return -1
	}
	var n int64
	for _, topics := range body.Partitions {
		all := len(topics) > 0
		for _, ps := range topics {
			all = all && len(ps) == 8
		}
		if all {
			n++
		}
	}
	return n
}

// stopGracefully sends SIGTERM to the child and checks that it exits 0.
// It fails the test if the child had exited before: a process that was
// meant to ride a fault out without a restart must still be the one that
// was started.
func (c *child) stopGracefully(t *testing.T) {
	t.Helper()
	if !c.running() {
		_ = c.cmd.Wait()
		t.Fatalf("engine had already exited (%v): it did not survive the fault", c.cmd.ProcessState)
	}
	c.terminate(t)
}

// logCount counts the lines of the child's log that contain each pattern.
func (c *child) logCount(patterns ...string) map[string]int {
	out, _ := os.ReadFile(c.log.Name())
	counts := map[string]int{}
	for _, l := range strings.Split(string(out), "\n") {
		for _, p := range patterns {
			if strings.Contains(l, p) {
				counts[p]++
			}
		}
	}
	return counts
}

// waitLog waits until the child's log holds pattern, polling every few
// milliseconds, and fails the test at timeout or if the child exits.
func (c *child) waitLog(t *testing.T, pattern string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, _ := os.ReadFile(c.log.Name())
		if bytes.Contains(out, []byte(pattern)) {
			return
		}
		if !c.running() {
			t.Fatalf("engine exited before logging %q", pattern)
		}
		if time.Now().After(deadline) {
			t.Fatalf("engine did not log %q within %s", pattern, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// startupSteps are log lines an engine writes while it starts, before its
// pipelines join their consumer groups: the Kafka client, the state
// store, the first plugin process.
var startupSteps = []string{"msg=kafka brokers=", `msg="state store opened"`, `msg="plugin started"`}

// faultLogPatterns are the engine log lines the fault tests report.
var faultLogPatterns = []string{
	"level=ERROR",
	"transaction failed; retrying",
	"batch not committed",
	"consume session ended",
	"consumer group error",
	"partition not ready; retrying",
}

// checkSourceOnce reads the source topic and checks that it holds each
// record of w exactly once: what the broker kept across its restart is
// what was acknowledged, no more.
func checkSourceOnce(t *testing.T, addr string, w workload) {
	t.Helper()
	got := enginetest.ReadAll(t, addr, "transactions", len(w.records), 2*time.Second, 90*time.Second)
	counts := map[string]int{}
	for _, r := range got {
		counts[string(r.Key)]++
	}
	bad := 0
	for _, r := range w.records {
		if n := counts[string(r.Key)]; n != 1 {
			if bad < 5 {
				t.Errorf("transactions: produced key %s held %d times, want 1", r.Key, n)
			}
			bad++
		}
	}
	if len(got) != len(w.records) {
		t.Errorf("transactions: got %d records, want %d (%d keys not exactly once)", len(got), len(w.records), bad)
	}
}

// brokerSIGKILLVar, set to 1, runs TestFaultBrokerRestart/SIGKILL-mid-stream,
// which the embedded broker fails (see that test).
const brokerSIGKILLVar = "BILLING_TEST_BROKER_SIGKILL"

// TestFaultBrokerRestart restarts the broker process (`engine broker`, on
// the same address and data dir) under one engine process running the
// stream pipelines with their tables, halfway through 20,100 records
// (20,000 transactions, 100 undecodable): stopped with SIGTERM while
// records flow, and killed with SIGKILL between batches. The engine must
// find the broker again by itself: afterwards the source holds every
// record once, every branch topic its keys exactly once (read_committed),
// the aggregates count every transaction once, and the engine is still the
// process that was started, and stops cleanly.
//
// SIGKILL while records flow is not run by default: the embedded broker
// (kfake) recovers a transaction that the kill left open by aborting it
// without writing an abort marker. Readers that follow the Kafka protocol
// (sarama, like the Java client) skip every later batch of that producer
// up to its next abort marker, so the next committed batches of the same
// transactional id are invisible to read_committed readers that fetch
// them with the aborted range: a table restore waits forever for its
// barrier record, and branch records are lost to readers. After a second
// restart kfake counts the aborted range as committed instead. Set
// BILLING_TEST_BROKER_SIGKILL=1 to run it.
func TestFaultBrokerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test; run without -short")
	}
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		idle bool // stop the broker once the engine has caught up
	}{
		{"SIGTERM-mid-stream", syscall.SIGTERM, false},
		{"SIGKILL-between-batches", syscall.SIGKILL, true},
		{"SIGKILL-mid-stream", syscall.SIGKILL, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.sig == syscall.SIGKILL && !tc.idle && os.Getenv(brokerSIGKILLVar) != "1" {
				t.Skipf("the embedded broker loses transactions open at a SIGKILL (see the test's doc); %s=1 runs it", brokerSIGKILLVar)
			}
			testBrokerRestart(t, tc.name, tc.sig, tc.idle)
		})
	}
}

func testBrokerRestart(t *testing.T, name string, sig syscall.Signal, idle bool) {
	begin := time.Now()
	bin := enginetest.BuildEngine(t)
	b := newBrokerProcess(t, bin)
	vars := env(t, b.addr)
	w := newWorkload(t, registry(t), 20_000, 100)
	half := len(w.records) / 2
	c := startChild(t, bin, vars)
	produceKgo(t, b.addr, w.records[:half])
	var at int64
	if idle {
		at = c.waitUntil(t, "records consumed, tables included", c.settled, int64(half), 120*time.Second)
	} else {
		at = c.waitUntil(t, "records consumed", c.consumed, int64(half/2), 120*time.Second)
	}

	err := b.stop(sig)
	signame, _, _ := strings.Cut(name, "-")
	t.Logf("broker stopped with %s (exit: %v) after the engine consumed %d of %d records", signame, err, at, len(w.records))
	if sig == syscall.SIGTERM && err != nil {
		t.Errorf("broker after SIGTERM: %v, want exit status 0", err)
	}
	// Down long enough for the engine's batches, heartbeats and fetches to
	// fail: it must find the broker again by itself.
	time.Sleep(2 * time.Second)
	b.start()
	back := time.Now()
	produceKgo(t, b.addr, w.records[half:])
	c.waitUntil(t, "records consumed", c.consumed, int64(len(w.records)), 120*time.Second)
	t.Logf("engine consumed all %d records %s after the broker came back", len(w.records), time.Since(back).Round(time.Millisecond))

	checkSourceOnce(t, b.addr, w)
	checkOutputs(t, b.addr, w)
	snapshotTables(t, "http://"+vars["BILLING_HTTP_LISTEN"], w)
	c.stopGracefully(t)
	t.Logf("engine log: %v", c.logCount(faultLogPatterns...))
	t.Logf("%s: %d records, broker restarted once, engine never restarted, nothing lost or twice; %s in all",
		name, len(w.records), time.Since(begin).Round(time.Second))
}

// settled returns what the child's processor has consumed once its
// tables' repartition pipelines have consumed all it produced for them,
// and -1 before: with nothing in flight, no transaction is open.
func (c *child) settled() int64 {
	s := c.stats()
	if s == nil {
		return -1
	}
	if s["consumed/store"] < s["consumed/processor"] {
		return -1
	}
	for _, table := range []string{"client_totals", "client_daily"} {
		if s["consumed/processor."+table] != s["produced/processor/table:"+table+"/billing-"+table+"-repartition"] {
			return -1
		}
	}
	return s["consumed/processor"]
}

// faultSeed returns the seed of a randomised fault test: FAULT_SEED when
// set, else the clock's. The test logs it, so a failing schedule can be
// run again.
func faultSeed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv("FAULT_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FAULT_SEED=%q: %v", s, err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// faultTx is transaction i of a fault run, as billingRun.createOne makes
// it: 7 in 10 APPROVED, 2 DECLINED, 1 APPROVED then REFUNDED.
type faultTx struct {
	id, client, currency string
	amount               int64
	status, final        store.TxStatus
}

func newFaultTx(i int) faultTx {
	tx := faultTx{id: fmt.Sprintf("tx-%05d", i), client: fmt.Sprintf("client-%02d", i%billingClients),
		currency: "USD", amount: int64(100 + i*7), status: store.StatusApproved, final: store.StatusBilled}
	switch i % 10 {
	case 7, 8:
		tx.status, tx.final = store.StatusDeclined, store.StatusDeclined
	case 9:
		tx.final = store.StatusRefunded
	}
	if i%4 == 3 {
		tx.currency, tx.amount = "JPY", int64(50+i)
	}
	return tx
}

// errFinal is an answer a retry cannot change.
var errFinal = errors.New("final answer")

// callUntil sends body (JSON) with method to url until the engine answers
// want: a client that retries across engine restarts. A POST carries
// Idempotency-Key key, so that a repeat of a request the dead engine had
// done is answered, not done twice; a PUT of a status is idempotent by
// itself. Network errors and 5xx answers (the engine down, starting or
// restoring) are retried; another answer fails at once.
func callUntil(ctx context.Context, method, url, key string, body any, want int, timeout time.Duration) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	var last string
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(payload))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := readAllClose(resp)
			if resp.StatusCode == want {
				return nil
			}
			last = fmt.Sprintf("HTTP %d %s", resp.StatusCode, b)
			if resp.StatusCode < 500 {
				return fmt.Errorf("%w: %s %s: %s", errFinal, method, url, last)
			}
		} else {
			last = err.Error()
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("%s %s: no answer %d after %d attempts; last: %s", method, url, want, attempt, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readAllClose(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err := buf.ReadFrom(resp.Body)
	return buf.Bytes(), err
}

// faultCreator creates transactions through the API, paced, until stopped,
// each one to the end (retrying across engine restarts) once begun.
type faultCreator struct {
	r       *billingRun
	created atomic.Int64
	errs    chan error
	wg      sync.WaitGroup
	stop    context.CancelFunc
}

// startCreating starts workers that create transactions 0, 1, 2, ... at
// about perSecond, until stopCreating.
func startCreating(r *billingRun, workers, perSecond int) *faultCreator {
	ctx, stop := context.WithCancel(context.Background())
	fc := &faultCreator{r: r, errs: make(chan error, workers), stop: stop}
	next := make(chan int)
	go func() {
		defer close(next)
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case <-ctx.Done():
				return
			case next <- i:
			}
		}
	}()
	for range workers {
		fc.wg.Add(1)
		go func() {
			defer fc.wg.Done()
			for i := range next {
				if err := fc.createOne(newFaultTx(i)); err != nil {
					fc.errs <- err
					return
				}
				fc.created.Add(1)
			}
		}()
	}
	return fc
}

// createOne creates tx and, for a refunded one, refunds it; once begun it
// goes on until the engine answers, whatever the creator's state.
func (fc *faultCreator) createOne(tx faultTx) error {
	r := fc.r
	ctx := context.Background()
	err := callUntil(ctx, "POST", r.base+"/api/v1/transactions", "create-"+tx.id, map[string]any{
		"transaction_id": tx.id, "client_id": tx.client, "amount_minor": tx.amount, "currency": tx.currency,
		"status": string(tx.status), "description": "order " + tx.id,
	}, http.StatusCreated, 90*time.Second)
	if err != nil {
		return err
	}
	// The outcome is decided once the create is acknowledged: record it
	// before the refund, which may be cut by a kill and retried.
	r.mu.Lock()
	r.want[tx.id] = tx.final
	r.mu.Unlock()
	if tx.final == store.StatusRefunded {
		return callUntil(ctx, "PUT", r.base+"/api/v1/transactions/"+tx.id, "", map[string]any{"status": "REFUNDED"}, http.StatusOK, 90*time.Second)
	}
	return nil
}

// stopCreating stops starting transactions, waits for those begun, and
// returns how many were created.
func (fc *faultCreator) stopCreating(t *testing.T) int {
	t.Helper()
	fc.stop()
	fc.wg.Wait()
	close(fc.errs)
	for err := range fc.errs {
		t.Fatal(err)
	}
	return int(fc.created.Load())
}

// TestFaultEngineKilledRepeatedly runs the whole billing flow
// (pipelines/billing.yaml with the billing and email plugins, SQLite,
// SMTP) as one engine process and SIGKILLs it eight times at random
// moments while clients keep creating and refunding transactions through
// the API, retrying across the restarts with Idempotency-Key. The moments
// come from a seeded math/rand (the seed is logged; FAULT_SEED repeats a
// schedule): up to two during start-up (at a random step before the
// pipelines join their consumer groups), the others once the new process
// owns every partition and has committed a random number of records,
// after a random delay. At the end every branch topic
// holds its keys exactly once, every APPROVED transaction is BILLED once
// in the database and on the topic, each was emailed exactly once (the
// SMTP server's count and the emails_sent log, with no claim left), and
// the aggregates count each transaction once in its final status.
func TestFaultEngineKilledRepeatedly(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test; run without -short")
	}
	const (
		kills        = 8
		startupKills = 2  // at most
		perSecond    = 40 // transactions created
	)
	begin := time.Now()
	seed := faultSeed(t)
	t.Logf("seed %d (FAULT_SEED=%d repeats this kill schedule)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))

	bin := enginetest.BuildEngine(t)
	smtp := enginetest.StartSMTP(t)
	r := newBillingRun(t, store.SQLite, smtp)
	c := startChild(t, bin, r.vars)
	c.waitReady(t)
	for i := range billingClients {
		id := fmt.Sprintf("client-%02d", i)
		if err := callUntil(t.Context(), "POST", r.base+"/api/v1/clients", "client-"+id, map[string]any{
			"client_id": id, "name": "Client " + strconv.Itoa(i), "email": id + "@example.com",
		}, http.StatusCreated, 60*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	fc := startCreating(r, 8, perSecond)
	logs := map[string]int{}
	addLogs := func(c *child) {
		for k, v := range c.logCount(faultLogPatterns...) {
			logs[k] += v
		}
	}
	atStartup := 0
	for k := 1; k <= kills; k++ {
		var when string
		if k > 1 && atStartup < startupKills && rng.IntN(4) == 0 {
			// During start-up, at a step before the pipelines join their
			// consumer groups (see ownsEverything for why not later).
			atStartup++
			step := startupSteps[rng.IntN(len(startupSteps))]
			c.waitLog(t, step, 60*time.Second)
			when = fmt.Sprintf("during start-up, at %q", step)
		} else {
			n := 1 + rng.Int64N(1000)
			d := time.Duration(rng.Int64N(int64(500 * time.Millisecond)))
			// Every consumer group settled on this process first: a member
			// killed while it waits in a join may never be expired by the
			// embedded broker (see ownsEverything).
			c.waitUntil(t, "consumer groups owning all their partitions", c.ownsEverything, billingGroups, 120*time.Second)
			got := c.waitUntil(t, "records committed", c.consumedAll, n, 60*time.Second)
			time.Sleep(d)
			when = fmt.Sprintf("%s after %d records committed (wanted %d)", d.Round(time.Millisecond), got, n)
		}
		c.kill(t)
		addLogs(c)
		t.Logf("kill %d at %s: SIGKILL %s; %d transactions created, %d emails sent so far",
			k, time.Since(begin).Round(time.Second), when, fc.created.Load(), smtp.Count())
		c = startChild(t, bin, r.vars)
	}
	created := fc.stopCreating(t)
	c.waitReady(t)
	t.Logf("%d kills done at %s, %d transactions created", kills, time.Since(begin).Round(time.Second), created)

	settling := time.Now()
	r.waitSettled(90 * time.Second)
	t.Logf("%d transactions settled in the database %s after the last kill", created, time.Since(settling).Round(time.Millisecond))
	billed := r.checkBilledRows()
	r.checkTopic(billed)
	r.checkEmails(billed)
	r.checkEmailLog(billed)
	r.checkBranches(billed)
	r.checkTotals()
	r.checkStatusSample(rng, 200)
	t.Logf("checks took %s", time.Since(settling).Round(time.Second))
	c.stopGracefully(t)
	addLogs(c)
	t.Logf("engine logs of all runs: %v", logs)
	t.Logf("%d kills, %d transactions (%d billed), %d emails, nothing lost or twice; %s in all",
		kills, created, len(billed), smtp.Count(), time.Since(begin).Round(time.Second))
}

// checkStatusSample asks the status table for n transactions picked
// with rng: each in its final status.
func (r *billingRun) checkStatusSample(rng *rand.Rand, n int) {
	r.t.Helper()
	ids := slices.Sorted(maps.Keys(r.want))
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	ids = ids[:min(n, len(ids))]
	eventually(r.t, 30*time.Second, func() error {
		for _, id := range ids {
			got, err := statusOf(r.base, id)
			if err != nil {
				return err
			}
			if got != string(r.want[id]) {
				return fmt.Errorf("status table: %s is %s, want %s", id, got, r.want[id])
			}
		}
		return nil
	})
}

// openRaw opens the run's SQLite database read-only, for what the store's
// API does not show (who billed a row, claims left in the email log).
func (r *billingRun) openRaw() *sql.DB {
	r.t.Helper()
	path := strings.TrimPrefix(r.dsn, "sqlite:")
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { db.Close() })
	return db
}

// checkBilledRows checks every row billed in the database was billed by
// the stream (billed_by is a transactions.approved record), and returns
// the billed ids.
func (r *billingRun) checkBilledRows() map[string]bool {
	t := r.t
	t.Helper()
	rows, err := r.openRaw().QueryContext(t.Context(), "SELECT transaction_id, status, COALESCE(billed_by, '') FROM transactions WHERE billed_at IS NOT NULL")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	billed := map[string]bool{}
	for rows.Next() {
		var id, status, by string
		if err := rows.Scan(&id, &status, &by); err != nil {
			t.Fatal(err)
		}
		billed[id] = true
		if !strings.HasPrefix(by, "transactions.approved/") {
			t.Errorf("%s: billed by %q, want a transactions.approved record", id, by)
		}
		if want := r.want[id]; want != store.StatusBilled && want != store.StatusRefunded {
			t.Errorf("%s: billed, but it ends %s", id, want)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id, want := range r.want {
		if want == store.StatusBilled && !billed[id] {
			t.Errorf("%s: approved but not billed", id)
		}
	}
	return billed
}

// checkBranches checks the processor's branch topics: each transaction's
// versions exactly once where its status sends them, and no dead letters.
func (r *billingRun) checkBranches(billed map[string]bool) {
	r.t.Helper()
	w := workload{want: map[string][]string{}}
	for _, id := range slices.Sorted(maps.Keys(r.want)) {
		n, _ := strconv.Atoi(strings.TrimPrefix(id, "tx-"))
		tx := newFaultTx(n)
		w.want[branchTopics[string(tx.status)]] = append(w.want[branchTopics[string(tx.status)]], id)
		if tx.final == store.StatusRefunded {
			w.want["transactions.refunded"] = append(w.want["transactions.refunded"], id)
		}
		if billed[id] {
			w.want["transactions.billed"] = append(w.want["transactions.billed"], id)
		}
	}
	checkOutputs(r.t, r.broker.Addr(), w)
	r.t.Logf("branches: %d approved, %d declined, %d refunded, %d billed, each exactly once",
		len(w.want["transactions.approved"]), len(w.want["transactions.declined"]), len(w.want["transactions.refunded"]), len(w.want["transactions.billed"]))
}

// checkEmailLog checks the emails_sent log: one SENT entry per billed
// transaction and none for others, no claim left SENDING, and one credit
// per refund of a billed transaction.
func (r *billingRun) checkEmailLog(billed map[string]bool) {
	t := r.t
	t.Helper()
	db := r.openRaw()
	sent := map[string]int{}
	rows, err := db.QueryContext(t.Context(), "SELECT ref_id, state FROM emails_sent WHERE kind = 'billed'")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, state string
		if err := rows.Scan(&id, &state); err != nil {
			t.Fatal(err)
		}
		if state != "SENT" {
			t.Errorf("emails_sent: %s is %s, want SENT", id, state)
		}
		sent[id]++
	}
	rows.Close()
	for id := range billed {
		if sent[id] != 1 {
			t.Errorf("emails_sent: %s logged %d times, want 1", id, sent[id])
		}
	}
	for id := range sent {
		if !billed[id] {
			t.Errorf("emails_sent: %s logged but not billed", id)
		}
	}
	var credits int
	if err := db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM credits").Scan(&credits); err != nil {
		t.Fatal(err)
	}
	want := 0
	for id := range billed {
		if r.want[id] == store.StatusRefunded {
			want++
		}
	}
	if credits != want {
		t.Errorf("credits: got %d, want %d (one per refund of a billed transaction)", credits, want)
	}
	t.Logf("emails_sent log: %d entries for %d billed transactions; %d credits", len(sent), len(billed), credits)
}

// checkTotals checks client_totals: per client, the count and sum of its
// transactions by final status and currency, each counted once.
func (r *billingRun) checkTotals() {
	t := r.t
	t.Helper()
	type group struct{ count, sum int64 }
	want := map[string]map[string]group{}
	for id, final := range r.want {
		n, _ := strconv.Atoi(strings.TrimPrefix(id, "tx-"))
		tx := newFaultTx(n)
		if want[tx.client] == nil {
			want[tx.client] = map[string]group{}
		}
		g := want[tx.client][string(final)+"|"+tx.currency]
		g.count++
		g.sum += tx.amount
		want[tx.client][string(final)+"|"+tx.currency] = g
	}
	for client, groups := range want {
		eventually(t, 60*time.Second, func() error {
			code, body, err := getJSON(r.base + "/api/v1/tables/client_totals/" + client)
			if err != nil || code != http.StatusOK {
				return fmt.Errorf("client_totals/%s: %d %v %v", client, code, body, err)
			}
			got := map[string]group{}
			for k, g := range body["value"].(map[string]any)["groups"].(map[string]any) {
				m := g.(map[string]any)
				got[k] = group{int64(m["count"].(float64)), int64(m["sum"].(float64))}
			}
			if fmt.Sprint(got) != fmt.Sprint(groups) {
				return fmt.Errorf("client_totals/%s: got %v, want %v", client, got, groups)
			}
			return nil
		})
	}
	t.Logf("client_totals: %d clients, every transaction counted once in its final status", len(want))
}
