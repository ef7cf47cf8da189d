package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/billing-engine/billing/engine/avro"
	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/store"
)

// The fault tests of this file break what the engine stores into: the
// database (cut off through a proxy, while it runs on for everyone else)
// and the disk under the state tables (a small tmpfs, filled up).

// proxyDSN starts a proxy to the server of the mysql:// setting dsn and
// returns it with the setting that goes through it.
func proxyDSN(t *testing.T, dsn string, opts ...enginetest.ProxyOption) (*enginetest.Proxy, string) {
	t.Helper()
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(dsn, "mysql://"))
	if err != nil {
		t.Fatalf("parse %s: %v", dsn, err)
	}
	p := enginetest.StartProxy(t, cfg.Addr, opts...)
	cfg.Addr = p.Addr()
	return p, "mysql://" + cfg.FormatDSN()
}

// answer is one HTTP answer the test saw: when the request was sent, how
// long the answer took, and what it was (netErr when there was none).
type answer struct {
	at         time.Time
	took       time.Duration
	code       int
	ctype      string
	retryAfter string
	replayed   bool // Idempotent-Replayed: true
	body       string
	netErr     error
}

// do sends req and reads its answer.
func do(req *http.Request) answer {
	a := answer{at: time.Now()}
	resp, err := http.DefaultClient.Do(req)
	a.took = time.Since(a.at)
	if err != nil {
		a.netErr = err
		return a
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a.code, a.ctype, a.body = resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	a.retryAfter = resp.Header.Get("Retry-After")
	a.replayed = resp.Header.Get("Idempotent-Replayed") == "true"
	return a
}

func get(url string) answer {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return answer{at: time.Now(), netErr: err}
	}
	return do(req)
}

// dbFlow is the traffic of the database tests: APPROVED transactions
// produced straight to the transactions topic, and others created through
// the API, with ids from one sequence (the number picks the client, as
// billingRun.checkEmails expects). Each one that exists is added to the
// run's want, as BILLED.
type dbFlow struct {
	r      *billingRun
	schema *avro.Schema
	seq    atomic.Int64

	mu sync.Mutex
	// failed are the API creates not answered 201, by id; they are
	// retried with the same Idempotency-Key once the database is back.
	failed   map[string]answer
	answers  []answer // every API create's answer, in order
	produced int
	created  int // answered 201 at once
}

func newDBFlow(t *testing.T, r *billingRun) *dbFlow {
	t.Helper()
	schema, err := registry(t).Schema("Transaction")
	if err != nil {
		t.Fatal(err)
	}
	return &dbFlow{r: r, schema: schema, failed: map[string]answer{}}
}

// next returns a new transaction id and its number.
func (f *dbFlow) next() (string, int) {
	n := int(f.seq.Add(1))
	return fmt.Sprintf("tx-%05d", n), n
}

// billed adds ids to the run's want: each must end BILLED.
func (f *dbFlow) billed(ids ...string) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	for _, id := range ids {
		f.r.want[id] = store.StatusBilled
	}
}

// produce writes n APPROVED transactions to the transactions topic.
func (f *dbFlow) produce(ctx context.Context, cl *kgo.Client, n int) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	recs := make([]*kgo.Record, n)
	ids := make([]string, n)
	for i := range recs {
		id, k := f.next()
		tx := store.Transaction{ID: id, ClientID: fmt.Sprintf("client-%02d", k%billingClients), AmountMinor: int64(100 + k),
			Currency: "EUR", Status: store.StatusApproved, Description: "produced " + id, CreatedAt: now, UpdatedAt: now}
		v, err := f.schema.Encode(tx.Record())
		if err != nil {
			return err
		}
		recs[i], ids[i] = &kgo.Record{Topic: "transactions", Key: []byte(id), Value: v}, id
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return err
	}
	f.billed(ids...)
	f.mu.Lock()
	f.produced += n
	f.mu.Unlock()
	return nil
}

// create creates a new APPROVED transaction through the API, and
// remembers it for a retry when the answer is not 201.
func (f *dbFlow) create() {
	id, k := f.next()
	a := f.post(id, k)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers = append(f.answers, a)
	if a.code != http.StatusCreated {
		f.failed[id] = a
		return
	}
	f.created++
	f.billed(id)
}

// post sends the create of transaction id (number k), with an
// Idempotency-Key of its own.
func (f *dbFlow) post(id string, k int) answer {
	body := fmt.Sprintf(`{"transaction_id":%q,"client_id":"client-%02d","amount_minor":%d,"currency":"USD","description":"api %s"}`,
		id, k%billingClients, 200+k, id)
	req, err := http.NewRequest("POST", f.r.base+"/api/v1/transactions", strings.NewReader(body))
	if err != nil {
		return answer{at: time.Now(), netErr: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "create-"+id)
	return do(req)
}

// apiClients is how many API clients create transactions at once.
const apiClients = 4

// run sends traffic until ctx ends: a batch of 10 produced transactions
// every 100ms, and creates from apiClients clients, each one after another
// with a pause of 50ms. Wait on the WaitGroup after ctx ends.
func (f *dbFlow) run(ctx context.Context, t *testing.T) *sync.WaitGroup {
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.r.broker.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	pause := func(d time.Duration) {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		defer cl.Close()
		for ctx.Err() == nil {
			if err := f.produce(context.WithoutCancel(ctx), cl, 10); err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			pause(100 * time.Millisecond)
		}
	})
	for range apiClients {
		wg.Go(func() {
			for ctx.Err() == nil {
				f.create()
				pause(50 * time.Millisecond)
			}
		})
	}
	return &wg
}

// TestFaultDatabaseUnreachable runs the whole billing system as a child
// process on MariaDB through a proxy, and cuts the database off for 12
// seconds, as a network partition does (connections dropped, new ones
// unanswered), while transactions flow in, produced to Kafka and created
// through the API. While it is away /readyz says "database unavailable"
// and creates are answered 503 problems once the API's store timeout
// (10s) has passed; once it is back the engine is ready again, the
// creates refused meanwhile succeed when retried with their
// Idempotency-Key, and every APPROVED transaction ends BILLED once, on the
// topic once, in the status table, and emailed once (the SMTP server's
// count and the emails_sent log agree). Nothing is dead-lettered.
func TestFaultDatabaseUnreachable(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test; run without -short")
	}
	testDatabaseCut(t, 12*time.Second)
}

// TestFaultDatabaseRefusing is TestFaultDatabaseUnreachable with the
// database's host up and nothing listening for 10 seconds: every
// connection is reset at once, and creates are answered 503 at once.
func TestFaultDatabaseRefusing(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test; run without -short")
	}
	testDatabaseCut(t, 10*time.Second, enginetest.Refusing())
}

func testDatabaseCut(t *testing.T, cut time.Duration, opts ...enginetest.ProxyOption) {
	bin := enginetest.BuildEngine(t)
	smtp := enginetest.StartSMTP(t)
	r := newBillingRun(t, store.MySQL, smtp)
	proxy, proxied := proxyDSN(t, r.dsn, opts...)
	r.vars["BILLING_DATABASE_DSN"] = proxied // the engine and both plugins; the test reads r.dsn, direct
	c := startChild(t, bin, r.vars)
	c.waitReady(t)
	r.createClients()

	f := newDBFlow(t, r)
	ctx, stop := context.WithCancel(t.Context())
	wg := f.run(ctx, t)
	defer func() { stop(); wg.Wait() }() // on a failure before the end too
	smtp.WaitFor(t, 50, 60*time.Second)  // billing and emailing, before the cut

	cutAt := time.Now()
	proxy.Cut()
	t.Logf("database cut off after %d emails", smtp.Count())
	var ready []answer
	for time.Since(cutAt) < cut {
		ready = append(ready, get(r.base+"/readyz"))
		time.Sleep(200 * time.Millisecond)
	}
	restoredAt := time.Now()
	proxy.Restore()
	// Ready again, with the database back.
	var back time.Duration
	eventually(t, 60*time.Second, func() error {
		a := get(r.base + "/readyz")
		if a.code != http.StatusOK {
			return fmt.Errorf("GET /readyz after the restore: %d %s %v", a.code, a.body, a.netErr)
		}
		back = time.Since(restoredAt)
		return nil
	})
	time.Sleep(2 * time.Second) // traffic after the restore too
	stop()
	wg.Wait()
	t.Logf("cut %s; ready again %s after the restore", restoredAt.Sub(cutAt).Round(time.Millisecond), back.Round(time.Millisecond))
	checkReadyDuringCut(t, ready, cutAt)
	checkCreatesDuringCut(t, f, cutAt, restoredAt)
	f.retryFailed(t)
	t.Logf("%d transactions produced to Kafka, %d created through the API (%d of them retried after a refusal)",
		f.produced, f.created+len(f.failed), len(f.failed))

	r.check()
	checkEmailsSentLog(t, r)
	checkEmpty(t, r.broker.Addr(), "transactions.dlq")
	checkEmpty(t, r.broker.Addr(), "transactions.store.dlq")
	logNotable(t, c)
}

// checkReadyDuringCut checks the readiness answers during the cut: 503
// "database unavailable", and never ready once it said so.
func checkReadyDuringCut(t *testing.T, ready []answer, cutAt time.Time) {
	t.Helper()
	first := -1
	for i, a := range ready {
		if a.code == http.StatusServiceUnavailable && strings.Contains(a.body, `"status":"database unavailable"`) {
			first = i
			break
		}
	}
	if first < 0 {
		t.Errorf("GET /readyz never answered 503 \"database unavailable\" during the cut; answers: %v", summarize(ready))
		return
	}
	for _, a := range ready[first:] {
		if a.code != http.StatusServiceUnavailable || !strings.Contains(a.body, "database unavailable") {
			t.Errorf("GET /readyz during the cut: %d %s (%v), want 503 database unavailable", a.code, a.body, a.netErr)
		}
	}
	t.Logf("GET /readyz during the cut: %d answers, 503 \"database unavailable\" from %s after the cut; e.g. %s",
		len(ready), ready[first].at.Sub(cutAt).Round(time.Millisecond), ready[first].body)
}

// checkCreatesDuringCut checks what the API answered the creates sent
// while the database was away: each got an answer, a problem (RFC 9457)
// 503 with Retry-After that leaks no SQL or driver text, or, for one that
// waited until the database was back, 201. At least one was refused.
func checkCreatesDuringCut(t *testing.T, f *dbFlow, cutAt, restoredAt time.Time) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	codes := map[int]int{}
	var during []answer
	for _, a := range f.answers {
		if a.at.After(cutAt) && a.at.Before(restoredAt) {
			during = append(during, a)
			codes[a.code]++
		}
	}
	leak := regexp.MustCompile(`(?i)sql|driver|invalid connection|tcp|dial|127\.0\.0\.1|broken pipe|reset by peer|refused`)
	bad, refused := 0, 0
	for _, a := range during {
		mt, _, _ := mime.ParseMediaType(a.ctype)
		answered := a.at.Add(a.took)
		switch {
		case a.netErr != nil:
			t.Errorf("POST during the cut: no answer after %s: %v", a.took, a.netErr)
		case a.code == http.StatusCreated && answered.After(restoredAt):
			continue // it waited for the database, and got it
		case a.code != http.StatusServiceUnavailable || mt != "application/problem+json" || a.retryAfter == "":
			t.Errorf("POST during the cut: %d %s Retry-After %q after %s: %s; want 503 application/problem+json with Retry-After",
				a.code, a.ctype, a.retryAfter, a.took.Round(time.Millisecond), a.body)
		case leak.MatchString(a.body):
			t.Errorf("POST during the cut: the answer leaks internals: %s", a.body)
		default:
			refused++
			continue
		}
		if bad++; bad >= 3 {
			break
		}
	}
	if refused == 0 {
		t.Errorf("no create sent during the cut was answered 503 (answers by status: %v)", codes)
		return
	}
	var slowest time.Duration
	for _, a := range during {
		slowest = max(slowest, a.took)
	}
	t.Logf("POST /api/v1/transactions during the cut: %d answers by status %v, the slowest in %s; e.g. %s",
		len(during), codes, slowest.Round(time.Millisecond), strings.TrimSpace(during[0].body))
}

// retryFailed retries the creates that failed, each with its own
// Idempotency-Key, until each answers 201: created now, or replayed
// because it had been created after all.
func (f *dbFlow) retryFailed(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	ids := make([]string, 0, len(f.failed))
	for id := range f.failed {
		ids = append(ids, id)
	}
	f.mu.Unlock()
	replayed := 0
	for _, id := range ids {
		var k int
		if _, err := fmt.Sscanf(id, "tx-%d", &k); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, func() error {
			a := f.post(id, k)
			if a.code != http.StatusCreated {
				return fmt.Errorf("retry of %s: %d %s %v", id, a.code, a.body, a.netErr)
			}
			if a.replayed {
				replayed++
			}
			return nil
		})
		f.billed(id)
	}
	t.Logf("%d refused creates retried with their Idempotency-Key: each answered 201 (%d replayed: created after all)", len(ids), replayed)
}

// checkEmailsSentLog checks the emails_sent log against the billed rows:
// one SENT entry per billed transaction, none left claimed.
func checkEmailsSentLog(t *testing.T, r *billingRun) {
	t.Helper()
	db, err := store.Open(t.Context(), r.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var billed []string
	for id, want := range r.want {
		if want == store.StatusBilled {
			billed = append(billed, id)
		}
	}
	sent, err := db.EmailsSent(t.Context(), "billed", billed)
	if err != nil {
		t.Fatal(err)
	}
	n, err := db.CountEmailsSent(t.Context(), "billed")
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != len(billed) || n != int64(len(billed)) {
		t.Errorf("emails_sent: %d of %d billed transactions logged, %d entries in all; want each once", len(sent), len(billed), n)
	}
	t.Logf("emails_sent: %d entries for %d billed transactions", n, len(billed))
}

// summarize counts answers by status and body.
func summarize(as []answer) map[string]int {
	out := map[string]int{}
	for _, a := range as {
		k := fmt.Sprintf("%d %s", a.code, a.body)
		if a.netErr != nil {
			k = a.netErr.Error()
		}
		out[k]++
	}
	return out
}

// notable are log messages worth counting after a fault.
var notable = []string{
	"api: database unavailable",
	"plugin restarting",
	"emails sent but not recorded",
	"batch not committed",
	"transaction failed; retrying",
	"partition not ready; retrying",
	"level=ERROR",
}

// logNotable logs how often the child logged each notable message.
func logNotable(t *testing.T, c *child) {
	t.Helper()
	b, err := os.ReadFile(c.log.Name())
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, m := range notable {
		counts[m] = strings.Count(string(b), m)
	}
	t.Logf("engine log: %v", counts)
	if n := counts["emails sent but not recorded"]; n > 0 && t.Failed() {
		t.Logf("%d batches of emails were sent while the database went away and not recorded: the email plugin "+
			"(plugins/email/mailer, Mailer.deliver) tries MarkEmailsSent once, and the retried batch sends them again", n)
	}
	// The distinct errors, without their times.
	seen := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if _, rest, ok := strings.Cut(l, "level=ERROR "); ok && !seen[rest] && len(seen) < 5 {
			seen[rest] = true
			t.Logf("engine error: %s", rest)
		}
	}
}

// mountTmpfs mounts a tmpfs of size bytes at dir (created if needed) and
// unmounts it when the test ends. It fails the test, saying why, where
// mounting is not permitted.
func mountTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("mount a %d-byte tmpfs at %s: %v: %s\nthis test needs to mount a small filesystem: run it as root (or with CAP_SYS_ADMIN)", size, dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "--lazy", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
}

// fillDisk writes a file in dir until the filesystem has no space left,
// and returns its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v, want ENOSPC", dir, err)
			}
			break
		}
	}
	// What is left is less than a page, and no more than a buffer.
	small := buf[:512]
	for {
		if _, err := f.Write(small); err != nil {
			break
		}
	}
	return path
}

// TestFaultStateDiskFull runs the stream pipelines (with their tables) as
// a child process with the state store on a 16 MiB tmpfs, and fills the
// tmpfs up in the middle of a run. The store keeps no log, so its
// memtables take the records in memory and the full disk shows at their
// next flush, at the latest the one of the shutdown, asked for here once
// the records are in. The engine stops with a non-zero status and an error
// naming the state directory and "no space left on device" (not a panic);
// once space is freed and it is started again, every output is there
// exactly once and the tables count every transaction once.
func TestFaultStateDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test; run without -short")
	}
	bin := enginetest.BuildEngine(t)
	b := enginetest.StartBroker(t)
	vars := env(t, b.Addr())
	stateDir := filepath.Join(vars["BILLING_DATA_DIR"], "state")
	mountTmpfs(t, stateDir, 16<<20)
	w := newWorkload(t, registry(t), 20_000, 100)
	first, rest := w.records[:5_000], w.records[5_000:]

	c := startChild(t, bin, vars)
	c.waitReady(t)
	produceKgo(t, b.Addr(), first)
	c.waitConsumed(t, int64(len(first)), 60*time.Second)
	before := c.consumed()
	filler := fillDisk(t, stateDir)
	produceKgo(t, b.Addr(), rest)

	// The engine stops, saying why: on its own when a memtable flush finds
	// the disk full, else when asked to, at the flush of its shutdown.
	exited := make(chan error, 1)
	go func() { exited <- c.cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for c.consumed() < int64(len(w.records)) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM) // fails when it has exited
	var err error
	select {
	case err = <-exited:
	case <-time.After(90 * time.Second):
		a := get("http://" + vars["BILLING_HTTP_LISTEN"] + "/readyz")
		t.Fatalf("the engine still runs 90s after its state disk filled up, having consumed %d records; /readyz %d %s",
			c.consumed(), a.code, a.body)
	}
	log, _ := os.ReadFile(c.log.Name())
	code := c.cmd.ProcessState.ExitCode()
	t.Logf("engine stopped with status %d; it had consumed %d of %d records when the disk filled", code, before, len(w.records))
	if err == nil || code == 0 {
		t.Errorf("engine on a full disk: exit status %d (%v), want non-zero", code, err)
	}
	for _, want := range []string{"no space left on device", stateDir, "level=ERROR"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("engine log: no %q in\n%s", want, tail(log, 3000))
		}
	}
	if i := strings.Index(string(log), "panic:"); i >= 0 {
		t.Errorf("engine log: a panic:\n%s", tail(log[i:], 3000))
	}
	for _, l := range strings.Split(string(log), "\n") {
		if strings.Contains(l, "no space left on device") {
			t.Logf("engine log: %s", l)
			break
		}
	}

	// Space freed, started again: everything once.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c = startChild(t, bin, vars)
	checkOutputs(t, b.Addr(), w)
	snapshotTables(t, "http://"+vars["BILLING_HTTP_LISTEN"], w)
	c.terminate(t)
	log, _ = os.ReadFile(c.log.Name())
	t.Logf("after the restart: %d table partitions restored from their changelogs", strings.Count(string(log), `msg="table restored"`))
}
