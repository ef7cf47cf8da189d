package bench

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/report.md")

func TestParseStat(t *testing.T) {
	// A command name with a space and a parenthesis; utime 250, stime 50.
	line := "4242 (eng ine)) S 17 4242 4242 0 -1 4194560 1 0 0 0 250 50 0 0 20 0 9 0 100 0 0\n"
	ppid, cpu, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if ppid != 17 || cpu != 3*time.Second {
		t.Errorf("parseStat = ppid %d, cpu %s; want 17, 3s", ppid, cpu)
	}
	if _, _, err := parseStat([]byte("4242 (x) S 1 2")); err == nil {
		t.Error("parseStat of a short line: no error")
	}
}

func TestProcSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	cpu, err := TreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cpu[os.Getpid()]; !ok {
		t.Errorf("TreeCPU(self) = %v, want an entry for itself", cpu)
	}
	if kib, err := PeakRSS(os.Getpid()); err != nil || kib <= 0 {
		t.Errorf("PeakRSS(self) = %d, %v; want > 0", kib, err)
	}
	if _, err := TreeCPU(-1); !errors.Is(err, ErrNoProc) {
		t.Errorf("TreeCPU(-1): got %v, want ErrNoProc", err)
	}
}

func TestCPUSince(t *testing.T) {
	before := map[int]time.Duration{1: time.Second, 2: time.Second}
	after := map[int]time.Duration{1: 3 * time.Second, 3: time.Second} // 2 ended, 3 started
	if got := CPUSince(before, after); got != 3*time.Second {
		t.Errorf("CPUSince = %s, want 3s", got)
	}
}

func TestPercentiles(t *testing.T) {
	d := make([]time.Duration, 1000)
	for i := range d {
		d[i] = time.Duration(1000-i) * time.Millisecond // 1000ms .. 1ms, unsorted
	}
	l := Percentiles(d)
	if l.P50 != 501*time.Millisecond || l.P99 != 991*time.Millisecond || l.P999 != 1000*time.Millisecond || l.Samples != 1000 {
		t.Errorf("Percentiles = %+v, want p50 501ms, p99 991ms, p999 1000ms, 1000 samples", l)
	}
	if l := Percentiles([]time.Duration{time.Second}); l.P999 != time.Second {
		t.Errorf("Percentiles of one sample: p999 %s, want 1s", l.P999)
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{Thousands(0), "0"},
		{Thousands(999), "999"},
		{Thousands(1000), "1,000"},
		{Thousands(-1234567), "-1,234,567"},
		{FormatLatency(0), "n/a"},
		{FormatLatency(40 * time.Microsecond), "0.04 ms"},
		{FormatLatency(8200 * time.Microsecond), "8.2 ms"},
		{FormatLatency(51900 * time.Microsecond), "52 ms"},
		{FormatLatency(3241600 * time.Microsecond), "3,242 ms"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestBatching(t *testing.T) {
	for file, want := range map[string]string{
		"mixed.yaml": "fast max_batch 100, max_wait 1ms; defaults max_batch 500, max_wait 5ms",
		"same.yaml":  "every pipeline (2) max_batch 500, max_wait 5ms",
	} {
		got, err := Batching(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("Batching(%s) = %q, want %q", file, got, want)
		}
	}
	if _, err := Batching(filepath.Join("testdata", "missing.yaml")); err == nil {
		t.Error("Batching of a missing file: no error")
	}
}

func TestWarning(t *testing.T) {
	r := Report{Rows: []Row{{Key: KeyCeiling, Rate: 100}, {Key: KeyBranch, Rate: 90}}}
	if w := r.Warning(); w != "" {
		t.Errorf("Warning with every ratio below 1 = %q, want none", w)
	}
	r.Rows = append(r.Rows, Row{Key: "plugin", Rate: 150})
	if w := r.Warning(); !strings.HasPrefix(w, "plugin ran faster than the ceiling") {
		t.Errorf("Warning with plugin above the ceiling = %q", w)
	}
}

// TestReportMarkdown compares the Markdown of a fixed report with
// testdata/report.md; -update rewrites it.
func TestReportMarkdown(t *testing.T) {
	lat := func(p50, p99, p999 time.Duration, rate int) Latency {
		return Latency{P50: p50, P99: p99, P999: p999, Samples: 95_000}.AtRate(rate)
	}
	ms := time.Millisecond
	r := Report{
		Started: time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC),
		Env:     Env{Go: "go1.26.8 linux/amd64", CPU: "Intel(R) Xeon(R) Processor", Cores: 2, Memory: "23.5 GiB", Commit: "77de395"},
		Setup:   "300,000 transactions per stream scenario",
		Draft:   "settings other than the defaults (BENCH_N=20000)",
		Rows: []Row{
			{Key: KeyCeiling, Name: "ceiling", Rate: 580_375, Records: 300_000, CPU: 900 * ms, RSSKiB: 40 << 10, Latency: lat(2*ms, 6*ms, 9*ms, 5_000), File: "engine/internal/bench/ceiling", Batching: "sarama async producer, flush every 1 ms or 1 MiB"},
			{Key: KeyStatus, Name: "status", Rate: 200_100, Runs: []float64{210_000, 200_100, 185_500}, Records: 300_000, CPU: 2500 * ms, RSSKiB: 90 << 10, Latency: lat(9*ms, 20*ms, 30*ms, 5_000), File: "engine/testdata/bench/status.yaml", Batching: "processor max_batch 500, max_wait 5ms"},
			{Key: KeyBranch, Name: "branch", Rate: 328_500, Records: 300_000, CPU: 2100 * ms, RSSKiB: 80 << 10, Latency: lat(9*ms, 31*ms, 48*ms, 5_000), File: "engine/testdata/bench/branch.yaml", Batching: "processor max_batch 500, max_wait 5ms"},
			{Key: KeyTables, Name: "tables", Rate: 27_673, Records: 300_000, CPU: -1, Latency: lat(30*ms, 90*ms, 200*ms, 5_000), File: "engine/testdata/bench/tables.yaml", Batching: "processor max_batch 500, max_wait 5ms"},
			{Key: KeyBillingMySQL, Name: "billing, MariaDB", Skipped: "MariaDB not reachable at 127.0.0.1:3306"},
			{Key: "queries", Name: "queries", Rate: 80_000, Records: 300_000, CPU: 3 * time.Second, RSSKiB: 100 << 10,
				Latency: Latency{P50: 40 * time.Microsecond, P99: 8200 * time.Microsecond, P999: 20 * ms, Samples: 5000, At: "queries"},
				File:    "engine/testdata/bench/status.yaml", Batching: "processor max_batch 500, max_wait 5ms"},
			{Key: KeyQueries2Local, Name: "queries, local", Rate: 90_000, Records: 300_000, CPU: 3 * time.Second, RSSKiB: 200 << 10,
				Latency: Latency{P50: 170 * time.Microsecond, P99: 1900 * time.Microsecond, P999: 9 * ms, Samples: 5000, At: "queries"},
				File:    "engine/testdata/bench/status.yaml", Batching: "processor max_batch 500, max_wait 5ms"},
			{Key: KeyQueries2Forwarded, Name: "queries, forwarded", Rate: 90_000, Records: 300_000, CPU: 3 * time.Second, RSSKiB: 200 << 10,
				Latency: Latency{P50: 480 * time.Microsecond, P99: 12 * ms, P999: 20 * ms, Samples: 5000, At: "queries"},
				File:    "engine/testdata/bench/status.yaml", Batching: "processor max_batch 500, max_wait 5ms"},
		},
	}
	got := r.Markdown()
	path := filepath.Join("testdata", "report.md")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("Markdown differs from %s (run with -update to rewrite it):\ngot:\n%s", path, got)
	}
}

func TestRSS(t *testing.T) {
	kib, err := RSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if kib <= 0 {
		t.Errorf("RSS of this process: %d KiB", kib)
	}
	if peak, err := PeakRSS(os.Getpid()); err != nil || peak < kib {
		t.Errorf("peak RSS %d KiB (err %v) below the current %d KiB", peak, err, kib)
	}
}
