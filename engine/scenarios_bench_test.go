package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/billing-engine/billing/engine"
	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/internal/bench"
	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
)

// BenchmarkScenarios runs every scenario of the project's benchmark table
// and prints the table; with BENCH_WRITE=1 it also writes BENCHMARKS.md at
// the repository's root (make bench sets it). The scenarios, in order: the
// ceiling (a plain sarama consume-and-produce, engine/internal/bench/ceiling),
// the branch pipeline, with the status table (restored from its changelog,
// and from its source topic), with the status and both
// aggregate tables, with an out-of-process plugin stage, the whole billing
// flow on SQLite and on MariaDB (skipped when the server does not answer),
// and status queries while the status pipeline consumes at full speed.
//
// Each scenario gets a fresh embedded broker in the benchmark's process,
// with the same records pre-produced, and runs the process under test (the
// engine binary, or the ceiling's) as a child, so that its CPU time and
// peak RSS are its own. Two phases per scenario:
//
//   - throughput: the records/s from the first record consumed until every
//     record is committed on its way out (read from the child's
//     /api/v1/stats every 5 ms), and the CPU time the child and its plugin
//     processes spent in between;
//   - latency: records produced at a fixed rate (BENCH_RATE, or half the
//     scenario's throughput when that is lower) for BENCH_LATENCY_SECONDS;
//     a read_committed consumer of the scenario's output topics takes, for
//     each record, the time from its produce call to its arrival. The first
//     second is warm-up and left out.
//
// Settings (environment): BENCH_N records per stream scenario (default
// 1,000,000), BENCH_RUNS throughput runs per stream scenario (3),
// BENCH_BILLING_N transactions per billing scenario (30,000), BENCH_RATE
// (5,000), BENCH_LATENCY_SECONDS (20), BENCH_QUERY_RATE the query
// scenarios' queries/s (1,000; 0 asks back to back), BENCH_SCENARIOS a comma list of the
// scenarios to run (ceiling, which always runs, branch, status,
// status-source, tables, plugin, billing-sqlite, billing-mysql, queries,
// queries-2), BENCH_BILLING_DB sqlite
// or mysql, BENCH_WRITE=1, BENCH_NOTE a line for BENCHMARKS.md, BENCH_LOG=1
// to print the children's logs, BENCH_PROFILE a directory for each engine's
// CPU and allocation profiles (with BENCH_TRACE=1, its execution trace). Run it with -benchtime 1x. CPU and RSS are
// read from /proc, so Linux only; elsewhere
// those columns say n/a.
func BenchmarkScenarios(b *testing.B) {
	s := scnSettingsFromEnv(b)
	for i := 0; i < b.N; i++ {
		rep := bench.Report{Started: time.Now(), Env: bench.Environment(enginetest.RepoRoot(b)),
			Setup: s.setup(), Draft: s.draft(), Note: os.Getenv("BENCH_NOTE")}
		for _, sc := range scnAll() {
			if sc.key != bench.KeyCeiling && !s.wants(sc.key) {
				continue
			}
			for _, row := range sc.run(b, s, sc) {
				b.Logf("%s: %s", row.Key, row.Summary())
				rep.Rows = append(rep.Rows, row)
			}
		}
		b.Log("\n" + rep.Table())
		if w := rep.Warning(); w != "" {
			b.Log("warning: " + w)
		}
		for _, r := range rep.Rows {
			if r.Skipped == "" {
				b.ReportMetric(r.Rate, r.Key+"_rec/s")
				b.ReportMetric(bench.Millis(r.Latency.P99), r.Key+"_p99_ms")
			}
		}
		if os.Getenv("BENCH_WRITE") == "1" {
			path := filepath.Join(enginetest.RepoRoot(b), "BENCHMARKS.md")
			if err := os.WriteFile(path, []byte(rep.Markdown()), 0o644); err != nil {
				b.Fatal(err)
			}
			b.Logf("wrote %s", path)
		}
	}
}

// scnSettings are the benchmark's settings; see BenchmarkScenarios.
type scnSettings struct {
	n, billingN, rate int
	queryRate         int // queries/s of the query scenarios; 0: back to back
	runs              int // throughput runs per stream scenario
	latency           time.Duration
	only              map[string]bool // nil: every scenario
	billingDB         string          // "": both dialects
}

const (
	scnDefaultRate      = 5_000
	scnDefaultQueryRate = 1_000
	scnDefaultLatency   = 20 * time.Second
	scnDefaultBilling   = 30_000
	scnDefaultRuns      = 3
	scnDefaultN         = 1_000_000
)

func scnSettingsFromEnv(b *testing.B) scnSettings {
	s := scnSettings{n: scnDefaultN, billingN: scnDefaultBilling, rate: scnDefaultRate, latency: scnDefaultLatency, runs: scnDefaultRuns,
		queryRate: scnDefaultQueryRate, billingDB: os.Getenv("BENCH_BILLING_DB")}
	s.n = envInt(b, "BENCH_N", s.n)
	s.billingN = envInt(b, "BENCH_BILLING_N", s.billingN)
	s.rate = envInt(b, "BENCH_RATE", s.rate)
	s.queryRate = envInt(b, "BENCH_QUERY_RATE", s.queryRate)
	if s.runs = envInt(b, "BENCH_RUNS", s.runs); s.runs < 1 {
		b.Fatalf("BENCH_RUNS=%d: want at least 1", s.runs)
	}
	if v := os.Getenv("BENCH_LATENCY_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 {
			b.Fatalf("BENCH_LATENCY_SECONDS=%q: want an integer of at least 2 (the first second is warm-up)", v)
		}
		s.latency = time.Duration(n) * time.Second
	}
	if v := os.Getenv("BENCH_SCENARIOS"); v != "" {
		s.only = map[string]bool{}
		for _, k := range strings.Split(v, ",") {
			s.only[strings.TrimSpace(k)] = true
		}
	}
	return s
}

func (s scnSettings) wants(key string) bool {
	if s.only != nil && !s.only[key] {
		return false
	}
	if d, ok := strings.CutPrefix(key, "billing-"); ok && s.billingDB != "" {
		return d == s.billingDB
	}
	return true
}

// setup is the sentence on the records and rates, for BENCHMARKS.md.
func (s scnSettings) setup() string {
	return fmt.Sprintf("%s transactions per stream scenario, records/s the median of %d runs; %s per billing scenario; latency phase %.0f s per scenario at %s/s, or half the scenario's throughput when that is lower; %s",
		bench.Thousands(int64(s.n)), s.runs, bench.Thousands(int64(s.billingN)), s.latency.Seconds(), bench.Thousands(int64(s.rate)), s.queriesSetup())
}

// queriesSetup says how often the query scenarios' client asks.
func (s scnSettings) queriesSetup() string {
	return "status " + s.queriesAt()
}

// queriesAt is the query scenarios' "latency at".
func (s scnSettings) queriesAt() string {
	if s.queryRate <= 0 {
		return "queries back to back"
	}
	return fmt.Sprintf("queries, up to %s/s", bench.Thousands(int64(s.queryRate)))
}

// draft says which settings differ from the defaults, or "".
func (s scnSettings) draft() string {
	var diff []string
	for _, d := range []struct {
		name      string
		got, want int
	}{
		{"BENCH_N", s.n, scnDefaultN},
		{"BENCH_BILLING_N", s.billingN, scnDefaultBilling},
		{"BENCH_RATE", s.rate, scnDefaultRate},
		{"BENCH_QUERY_RATE", s.queryRate, scnDefaultQueryRate},
		{"BENCH_RUNS", s.runs, scnDefaultRuns},
		{"BENCH_LATENCY_SECONDS", int(s.latency.Seconds()), int(scnDefaultLatency.Seconds())},
	} {
		if d.got != d.want {
			diff = append(diff, fmt.Sprintf("%s=%d", d.name, d.got))
		}
	}
	if s.only != nil || s.billingDB != "" {
		diff = append(diff, "some scenarios left out (BENCH_SCENARIOS, BENCH_BILLING_DB)")
	}
	if len(diff) == 0 {
		return ""
	}
	return "settings other than the defaults: " + strings.Join(diff, ", ")
}

// latencyRate is the fixed rate of a scenario's latency phase: the
// setting, or half the scenario's throughput when that is lower (the
// phase measures latency below saturation).
func (s scnSettings) latencyRate(throughput float64) int {
	return max(1, min(s.rate, int(throughput/2)))
}

// scnScenario is one row of the table.
type scnScenario struct {
	key, name string
	file      string // pipeline file, relative to the repository; "" for the ceiling
	app       string // application id (consumer group)
	first     string // the counter whose first record starts the clock
	done      []string
	// follow are the counters of consumers of internal topics (an
	// aggregate's repartition records, combined per group and batch) and
	// the counter of what was produced to them: once done reached the
	// record count, each consumer must have caught up with its producer.
	follow [][2]string
	sinks  []string          // the topics the latency phase reads
	plugin string            // a plugin's main package, served from BILLING_PLUGIN_DIR under its base name
	env    map[string]string // the engine's environment, besides the broker, ports and data dir
	run    func(*testing.B, scnSettings, scnScenario) []bench.Row
}

var scnBranchSinks = []string{"transactions.approved", "transactions.declined", "transactions.refunded", "transactions.billed"}

func scnAll() []scnScenario {
	stream := func(key, name, file string, done ...string) scnScenario {
		return scnScenario{key: key, name: name, file: file, app: "bench-" + key, first: "consumed/processor",
			done: append([]string{"produced/processor/branch/"}, done...), sinks: scnBranchSinks, run: scnRunStream}
	}
	billing := func(key, name string) scnScenario {
		return scnScenario{key: key, name: name, file: "pipelines/billing.yaml", app: "billing", first: "consumed/processor",
			done: []string{"consumed/notify"}, sinks: []string{"transactions.billed"}, run: scnRunBilling}
	}
	plugin := stream("plugin", "branch pipeline + out-of-process plugin stage (tagger)", "engine/testdata/bench/plugin.yaml")
	plugin.plugin = "examples/plugins/tagger"
	tables := stream(bench.KeyTables, "+ status and both aggregate tables", "engine/testdata/bench/tables.yaml")
	tables.follow = [][2]string{
		{"consumed/processor.client_totals", "produced/processor/table:client_totals/"},
		{"consumed/processor.client_daily", "produced/processor/table:client_daily/"},
	}
	source := stream(bench.KeyStatusSource, "+ status table restored from its source (changelog: source)", "engine/testdata/bench/status.yaml")
	source.env = map[string]string{"BILLING_STATUS_CHANGELOG": "source"}
	return []scnScenario{
		{key: bench.KeyCeiling, name: "ceiling: plain sarama consume-and-produce", app: "bench-ceiling", first: "consumed/ceiling",
			done: []string{"produced/ceiling/"}, sinks: []string{"bench.passthrough"}, run: scnRunStream},
		stream(bench.KeyBranch, "branch pipeline (decode, filter, branch, exactly-once)", "engine/testdata/bench/branch.yaml"),
		stream(bench.KeyStatus, "+ status table", "engine/testdata/bench/status.yaml"),
		source,
		tables,
		plugin,
		billing("billing-sqlite", "billing end to end, SQLite (billed and emailed/s)"),
		billing(bench.KeyBillingMySQL, "billing end to end, MariaDB (billed and emailed/s)"),
		{key: bench.KeyQueries, name: "status queries while the status pipeline consumes, one instance",
			file: "engine/testdata/bench/status.yaml", app: "bench-queries", first: "consumed/processor",
			done: []string{"produced/processor/branch/"}, run: scnRunQueries},
		{key: bench.KeyQueries2, name: "status queries, two instances of one core each",
			file: "engine/testdata/bench/status.yaml", app: "bench-queries-2", first: "consumed/processor",
			done: []string{"produced/processor/branch/"}, run: scnRunQueries2},
	}
}

// scnRunStream runs a stream scenario: the ceiling or an engine pipeline
// over BENCH_N transactions. The throughput phase runs BENCH_RUNS times,
// each on a fresh broker and process, and the row takes the median run's
// records/s and CPU (a single run of a few seconds on a 2-core machine
// varies by 15% and more); the latency phase runs once, on the last.
func scnRunStream(b *testing.B, s scnSettings, sc scnScenario) []bench.Row {
	var runs []bench.Throughput
	for {
		br := enginetest.StartBroker(b)
		produceBench(b, br.Addr(), s.n)
		var p *bench.Child
		if sc.file == "" {
			p = scnStartCeiling(b, br.Addr(), sc.app)
		} else {
			vars := maps.Clone(sc.env)
			if vars == nil {
				vars = map[string]string{}
			}
			if sc.plugin != "" {
				vars["BILLING_PLUGIN_DIR"] = scnPluginDir(b, sc.plugin)
			}
			p = scnStartEngine(b, br.Addr(), sc, vars)
		}
		var caughtUp func() bool
		if len(sc.follow) > 0 {
			caughtUp = func() bool {
				snap, err := p.Stats()
				if err != nil {
					return false
				}
				for _, f := range sc.follow {
					if produced := bench.Sum(snap, f[1]); produced == 0 || bench.Sum(snap, f[0]) < produced {
						return false
					}
				}
				return true
			}
		}
		runs = append(runs, p.Throughput(b, sc.first, sc.done, s.n, nil, caughtUp))
		if len(runs) < s.runs {
			p.Stop(b)
			br.Close()
			continue
		}
		thr := bench.MedianRun(runs)
		rate := s.latencyRate(thr.Rate)
		lat := bench.MeasureLatency(b, br.Addr(), "transactions", sc.sinks, rate, scnTxRecords(b, rate, s.latency))
		row := scnFinish(b, sc, p, thr, lat, s.n)
		for _, r := range runs {
			row.Runs = append(row.Runs, r.Rate)
		}
		br.Close()
		return []bench.Row{row}
	}
}

// scnRunQueries measures status queries on the API of one instance while it
// consumes BENCH_N transactions into its status table.
func scnRunQueries(b *testing.B, s scnSettings, sc scnScenario) []bench.Row {
	br := enginetest.StartBroker(b)
	defer br.Close()
	produceBench(b, br.Addr(), s.n)
	p := scnStartEngine(b, br.Addr(), sc, nil)
	q := scnStartQuerier(b, p.API(), []string{p.API()}, sc.done[0], s.queryRate)
	thr := p.Throughput(b, sc.first, sc.done, s.n, nil, nil)
	res := q.stop(b)
	if len(res.Local) == 0 {
		b.Fatalf("queries: no answer with 200: %s", res)
	}
	b.Logf("queries: %s", res)
	row := scnFinish(b, sc, p, thr, bench.Latency{}, s.n)
	return scnQueryRows(s, row, []scnQueryPart{{sc.key, sc.name, res.Local, res.LocalRoundTrip}})
}

// scnQueryPart is one kind of answer of a query scenario: its key and
// name, and its times at the client's socket and over the round trip, in
// nanoseconds.
type scnQueryPart struct {
	key, name           string
	atSocket, roundTrip []int64
}

// scnQueryRows returns two rows per part of a query scenario, both with
// row's throughput: the answers' times at the client's socket (the row
// the targets read), and their round trips, which add the client's own
// wait for a core ("<key>-round-trip").
func scnQueryRows(s scnSettings, row bench.Row, parts []scnQueryPart) []bench.Row {
	var rows []bench.Row
	for _, part := range parts {
		at := bench.Percentiles(bench.Durations(part.atSocket))
		at.At = s.queriesAt() + "; at the client's socket"
		rt := bench.Percentiles(bench.Durations(part.roundTrip))
		rt.At = s.queriesAt() + "; client round trip"
		r := row
		r.Key, r.Name, r.Latency = part.key, part.name, at
		rows = append(rows, r)
		r.Key, r.Name, r.Latency = part.key+"-round-trip", part.name+", client round trip", rt
		rows = append(rows, r)
	}
	return rows
}

// scnRunQueries2 measures status queries to one of two instances sharing
// the application while they consume BENCH_N transactions: the queried
// instance answers the keys of its own partitions and forwards the others
// to their owner. The two share the 2 cores of the reference machine as
// two instances given one core each would (GOMAXPROCS=1, which a CPU
// limit of 1 sets): with two processors each, four threads take turns on
// two cores, and a query waits whenever the thread holding it is off its
// core. Two rows: the answers served locally, and those forwarded; their
// records/s is the two instances' together.
func scnRunQueries2(b *testing.B, s scnSettings, sc scnScenario) []bench.Row {
	br := enginetest.StartBroker(b)
	defer br.Close()
	produceBench(b, br.Addr(), s.n)
	var instances []*bench.Child
	var apis []string
	for range 2 {
		p := scnStartEngine(b, br.Addr(), sc, map[string]string{"GOMAXPROCS": "1"})
		instances, apis = append(instances, p), append(apis, p.API())
	}
	// The clock starts once both consume: before, the first one has
	// every partition while the group forms.
	for _, p := range instances {
		p.WaitFor(b, 2*time.Minute, func(snap map[string]int64) bool { return snap[sc.first] > 0 })
	}
	q := scnStartQuerier(b, apis[0], apis, sc.done[0], s.queryRate)
	start := time.Now()
	var cpu0 []map[int]time.Duration
	for _, p := range instances {
		c, _ := bench.TreeCPU(p.Pid())
		cpu0 = append(cpu0, c)
	}
	deadline := start.Add(10 * time.Minute)
	for {
		var n int64
		for _, p := range instances {
			if snap, err := p.Stats(); err == nil {
				n += bench.Sum(snap, sc.done[0])
			}
		}
		if n >= int64(s.n) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: %d of %d records branched after 10m", sc.key, n, s.n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	thr := bench.Throughput{Rate: float64(s.n) / elapsed.Seconds()}
	var rss int64
	for i, p := range instances {
		c, err := bench.TreeCPU(p.Pid())
		if err == nil {
			thr.CPU += bench.CPUSince(cpu0[i], c)
		}
		r, _ := bench.PeakRSS(p.Pid())
		rss += r
	}
	res := q.stop(b)
	for _, p := range instances {
		p.Stop(b)
	}
	b.Logf("%s: %s", sc.key, res)
	batching, err := bench.Batching(filepath.Join(enginetest.RepoRoot(b), sc.file))
	if err != nil {
		b.Fatal(err)
	}
	parts := []scnQueryPart{
		{bench.KeyQueries2Local, sc.name + ": answered by the instance asked", res.Local, res.LocalRoundTrip},
		{bench.KeyQueries2Forwarded, sc.name + ": forwarded to the other", res.Forwarded, res.ForwardedRoundTrip},
	}
	for _, part := range parts {
		if len(part.atSocket) == 0 {
			b.Fatalf("%s: no answer", part.key)
		}
	}
	row := bench.Row{Rate: thr.Rate, Records: s.n, CPU: thr.CPU, RSSKiB: rss, File: sc.file, Batching: batching}
	return scnQueryRows(s, row, parts)
}

// scnQuerier is the query client of the query benchmarks: a process of its
// own (engine/internal/bench/querier), as a real client is. It runs at nice
// -10 where the system allows it (root, or CAP_SYS_NICE): the engine and
// the broker keep both cores busy, and a client at the same priority would
// wait for a core to read each answer, which is the client's latency, not
// the engine's. Its result says the nice value it ran at.
type scnQuerier struct {
	child *bench.Child
	out   string
}

// scnStartQuerier starts querying api for the keys the instances at
// follow have counted in their counters with the prefix progress, rate
// queries a second at most (0: back to back).
func scnStartQuerier(b *testing.B, api string, follow []string, progress string, rate int) *scnQuerier {
	q := &scnQuerier{out: filepath.Join(b.TempDir(), "queries.json")}
	bin := enginetest.BuildPlugin(b, "engine/internal/bench/querier")
	args := []string{"-api", api, "-follow", strings.Join(follow, ","), "-progress", progress, "-out", q.out, "-rate", strconv.Itoa(rate)}
	if nice, err := exec.LookPath("nice"); err == nil {
		// Without the privilege, nice says so and runs it as it is.
		args = append([]string{"-n", "-10", bin}, args...)
		bin = nice
	}
	q.child = bench.StartChild(b, bin, args, nil, "")
	return q
}

// stop stops the querier and returns what it measured.
func (q *scnQuerier) stop(b *testing.B) bench.QueryResult {
	q.child.Stop(b)
	var res bench.QueryResult
	raw, err := os.ReadFile(q.out)
	if err == nil {
		err = json.Unmarshal(raw, &res)
	}
	if err != nil {
		b.Fatalf("querier: %v", err)
	}
	return res
}

// scnRunBilling runs pipelines/billing.yaml whole with its plugins, on the
// dialect of the scenario, as BenchmarkBilling does.
func scnRunBilling(b *testing.B, s scnSettings, sc scnScenario) []bench.Row {
	d := store.Dialect(strings.TrimPrefix(sc.key, "billing-"))
	if d == store.MySQL {
		if why := scnMySQLUnreachable(); why != "" {
			return []bench.Row{{Key: sc.key, Name: sc.name, Skipped: why}}
		}
	}
	br := enginetest.StartBroker(b)
	defer br.Close()
	dsn := storetest.DSN(b, d)
	benchClients(b, dsn, 50)
	produceApproved(b, br.Addr(), s.billingN, 50)
	smtp := enginetest.StartSMTP(b, enginetest.WithCountOnly())
	dir := b.TempDir()
	p := scnStartEngine(b, br.Addr(), sc, map[string]string{
		"BILLING_DATA_DIR":     dir,
		"BILLING_DATABASE_DSN": dsn,
		"BILLING_SMTP_ADDR":    smtp.Addr(),
		"BILLING_PLUGIN_DIR":   enginetest.BuildBillingPlugins(b),
	})
	db, err := store.Open(context.Background(), dsn, store.DataDir(dir))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	n := s.billingN
	thr := p.Throughput(b, sc.first, sc.done, n, nil, func() bool {
		billed, emailed := billingProgress(b, db)
		return billed >= int64(n) && emailed >= int64(n)
	})
	if got := smtp.Count(); got < n {
		b.Errorf("%s: %d emails received, want %d", sc.key, got, n)
	}
	rate := s.latencyRate(thr.Rate)
	lat := bench.MeasureLatency(b, br.Addr(), "transactions", sc.sinks, rate, scnApprovedRecords(b, rate, s.latency, 50))
	return []bench.Row{scnFinish(b, sc, p, thr, lat, n)}
}

// scnMySQLUnreachable says why the MySQL scenario cannot run, or "" when
// the server storetest uses answers.
func scnMySQLUnreachable() string {
	if strings.EqualFold(os.Getenv("BILLING_TEST_MYSQL"), "off") {
		return "BILLING_TEST_MYSQL=off"
	}
	server := os.Getenv("BILLING_TEST_MYSQL_DSN")
	if server == "" {
		server = "root@tcp(127.0.0.1:3306)/"
	}
	cfg, err := mysql.ParseDSN(server)
	if err != nil {
		return fmt.Sprintf("BILLING_TEST_MYSQL_DSN: %s", err)
	}
	c, err := net.DialTimeout("tcp", cfg.Addr, 2*time.Second)
	if err != nil {
		return fmt.Sprintf("MariaDB not reachable at %s", cfg.Addr)
	}
	c.Close()
	return ""
}

// scnFinish reads the child's peak RSS, stops it and makes the row.
func scnFinish(b *testing.B, sc scnScenario, p *bench.Child, thr bench.Throughput, lat bench.Latency, n int) bench.Row {
	rss, err := bench.PeakRSS(p.Pid())
	if err != nil {
		b.Logf("%s: peak RSS: %v", sc.key, err)
	}
	p.Stop(b)
	row := bench.Row{Key: sc.key, Name: sc.name, Rate: thr.Rate, Records: n, CPU: thr.CPU, RSSKiB: rss, Latency: lat,
		File: "engine/internal/bench/ceiling", Batching: "of the sarama async producer, flush every 1 ms or 1 MiB"}
	if sc.file != "" {
		row.File = sc.file
		if row.Batching, err = bench.Batching(filepath.Join(enginetest.RepoRoot(b), sc.file)); err != nil {
			b.Fatal(err)
		}
	}
	return row
}

// scnPluginDir builds the plugin at pkg and returns a directory that holds
// it under pkg's base name: the value of BILLING_PLUGIN_DIR for the
// pipeline file.
func scnPluginDir(b *testing.B, pkg string) string {
	dir := b.TempDir()
	if err := os.Symlink(enginetest.BuildPlugin(b, pkg), filepath.Join(dir, filepath.Base(pkg))); err != nil {
		b.Fatal(err)
	}
	return dir
}

func scnStartEngine(b *testing.B, addr string, sc scnScenario, vars map[string]string) *bench.Child {
	listen := enginetest.FreeAddr(b)
	env := map[string]string{
		"BILLING_KAFKA_BROKERS":  addr,
		"BILLING_APPLICATION_ID": sc.app,
		"BILLING_DATA_DIR":       b.TempDir(),
		"BILLING_HTTP_LISTEN":    listen,
		"BILLING_LOG_FORMAT":     "text",
	}
	for k, v := range vars {
		env[k] = v
	}
	file := filepath.Join(enginetest.RepoRoot(b), sc.file)
	args := []string{"run", file}
	if dir := os.Getenv("BENCH_PROFILE"); dir != "" {
		// A CPU and an allocation profile of the child's whole run, per
		// scenario; with BENCH_TRACE=1 an execution trace too.
		args = []string{"run", "-cpuprofile", filepath.Join(dir, sc.key+".cpu.pprof"), "-memprofile", filepath.Join(dir, sc.key+".mem.pprof")}
		if os.Getenv("BENCH_TRACE") == "1" {
			args = append(args, "-trace", filepath.Join(dir, sc.key+".trace"))
		}
		args = append(args, file)
	}
	return bench.StartChild(b, enginetest.BuildEngine(b), args, env, listen)
}

func scnStartCeiling(b *testing.B, addr, group string) *bench.Child {
	listen := enginetest.FreeAddr(b)
	bin := enginetest.BuildPlugin(b, "engine/internal/bench/ceiling")
	return bench.StartChild(b, bin, []string{"-brokers", addr, "-group", group, "-http", listen}, nil, listen)
}

// scnTxRecords encodes the latency phase's transactions (produceBench's
// mix), rate per second for d.
func scnTxRecords(b *testing.B, rate int, d time.Duration) []*kgo.Record {
	schema, err := registry(b).Schema("Transaction")
	if err != nil {
		b.Fatal(err)
	}
	gen := engine.NewTxGen(5, 1000, "lat")
	recs := make([]*kgo.Record, int(d.Seconds())*rate)
	for i := range recs {
		tx := gen.Next()
		v, err := schema.Encode(tx)
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = &kgo.Record{Key: []byte(tx["transaction_id"].(string)), Value: v}
	}
	return recs
}

// scnApprovedRecords encodes APPROVED transactions of produceApproved's
// clients, rate per second for d.
func scnApprovedRecords(b *testing.B, rate int, d time.Duration, clients int) []*kgo.Record {
	schema, err := registry(b).Schema("Transaction")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	recs := make([]*kgo.Record, int(d.Seconds())*rate)
	for i := range recs {
		id := fmt.Sprintf("bl-%08d", i)
		v, err := schema.Encode(benchTx(id, fmt.Sprintf("bc-%03d", i%clients), int64(100+i%9_900), "USD", "APPROVED", now))
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = &kgo.Record{Key: []byte(id), Value: v}
	}
	return recs
}
