package bench

import (
	"fmt"
	"strings"
	"time"
)

// The scenario keys a Report knows: the ratios are to the "ceiling" row,
// and the targets read the rows "branch", "status", "status-source",
// "tables", "billing-mysql", "queries" and the two of "queries-2".
const (
	KeyCeiling      = "ceiling"
	KeyBranch       = "branch"
	KeyTables       = "tables"
	KeyBillingMySQL = "billing-mysql"
	KeyStatus       = "status"
	// KeyStatusSource is the status table restored from its source topic
	// (changelog: source).
	KeyStatusSource = "status-source"
	KeyQueries      = "queries"
	// KeyQueries2 is the two-instance query scenario, whose rows are
	// KeyQueries2Local and KeyQueries2Forwarded (and each with
	// "-round-trip" appended, the client's round trip).
	KeyQueries2          = "queries-2"
	KeyQueries2Local     = "queries-2-local"
	KeyQueries2Forwarded = "queries-2-forwarded"
)

// Row is one scenario's results.
type Row struct {
	// Key names the scenario in metrics and targets; Name in the table.
	Key, Name string
	// Rate is the throughput phase's records/s (transactions billed and
	// emailed/s for billing) over Records records: the median of Runs
	// when the phase ran more than once.
	Rate float64
	// Runs are the records/s of each throughput run, when there were
	// several.
	Runs    []float64
	Records int
	// CPU is the CPU time of the throughput phase; negative when unknown.
	CPU time.Duration
	// RSSKiB is the peak RSS of the process and its plugins; 0 when
	// unknown.
	RSSKiB  int64
	Latency Latency
	// File is the pipeline file (or the command) the scenario ran, and
	// Batching its pipelines' max_batch/max_wait (see Batching).
	File, Batching string
	// Skipped, when set, says why the scenario did not run; the other
	// fields are then empty.
	Skipped string
}

// CPUPer100k formats the CPU seconds per 100,000 records.
func (r Row) CPUPer100k() string {
	if r.CPU < 0 || r.Records == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", r.CPU.Seconds()*100_000/float64(r.Records))
}

// RSSMiB formats the peak RSS in MiB.
func (r Row) RSSMiB() string {
	if r.RSSKiB == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", float64(r.RSSKiB)/1024)
}

// Summary is the row on one line, for the benchmark's log.
func (r Row) Summary() string {
	if r.Skipped != "" {
		return "skipped: " + r.Skipped
	}
	l := r.Latency
	return fmt.Sprintf("%.0f rec/s; latency at %s: p50 %s, p99 %s, p999 %s (%d samples, %d missing, %d twice); CPU s/100k %s; peak RSS %s MiB",
		r.Rate, l.At, FormatLatency(l.P50), FormatLatency(l.P99), FormatLatency(l.P999), l.Samples, l.Missing, l.Duplicates,
		r.CPUPer100k(), r.RSSMiB())
}

// Report is a run's results.
type Report struct {
	Started time.Time
	Env     Env
	Rows    []Row
	// Setup is one sentence on the records and rates the run used.
	Setup string
	// Draft, when set, says why the run is not the project's figures
	// (settings other than the defaults); Note is a line of its own.
	Draft, Note string
}

func (r Report) row(key string) (Row, bool) {
	for _, row := range r.Rows {
		if row.Key == key && row.Skipped == "" {
			return row, true
		}
	}
	return Row{}, false
}

// Ratio is row's rate over the ceiling's, or 0 without a ceiling.
func (r Report) Ratio(row Row) float64 {
	c, ok := r.row(KeyCeiling)
	if !ok || c.Rate == 0 {
		return 0
	}
	return row.Rate / c.Rate
}

// Table is the Markdown table of every scenario.
func (r Report) Table() string {
	var w strings.Builder
	w.WriteString("| scenario | records/s | ratio to the ceiling | latency at | p50 | p99 | p999 | CPU s per 100k records | peak RSS MiB |\n")
	w.WriteString("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, row := range r.Rows {
		if row.Skipped != "" {
			fmt.Fprintf(&w, "| %s | skipped: %s | | | | | | | |\n", row.Name, row.Skipped)
			continue
		}
		l := row.Latency
		fmt.Fprintf(&w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", row.Name, Thousands(int64(row.Rate)), formatRatio(r.Ratio(row)),
			l.At, FormatLatency(l.P50), FormatLatency(l.P99), FormatLatency(l.P999), row.CPUPer100k(), row.RSSMiB())
	}
	return w.String()
}

// Warning says why the ratios cannot be trusted, or "": a scenario faster
// than the ceiling means the ceiling ran under other conditions (another
// load on the machine).
func (r Report) Warning() string {
	var faster []string
	for _, row := range r.Rows {
		if row.Key != KeyCeiling && row.Skipped == "" && r.Ratio(row) > 1 {
			faster = append(faster, row.Key)
		}
	}
	if len(faster) == 0 {
		return ""
	}
	return fmt.Sprintf("%s ran faster than the ceiling, so the ceiling ran under other conditions (another load on the machine) and the ratios do not hold; run again on a quiet machine.",
		strings.Join(faster, ", "))
}

// formatRatio gives a ratio two decimals, three below 0.1.
func formatRatio(r float64) string {
	if r < 0.1 {
		return fmt.Sprintf("%.3f", r)
	}
	return fmt.Sprintf("%.2f", r)
}

// Target is one of the targets and what the run measured.
type Target struct {
	What, Measured string
	// Verdict is "met", "**missed**", or why it was not judged ("" when
	// the scenario did not run).
	Verdict string
}

// Targets are the issues' targets: the branch pipeline at 0.50 of the
// ceiling or more, the status table at a third or more (with either
// changelog), the tables at
// 0.35 or more, billing on MariaDB at 5,000/s or more, the branch
// pipeline's p99 under 50 ms at 5,000/s, and status queries while the
// pipeline consumes at full speed: p99 under 2 ms answered by the
// instance asked, under 10 ms forwarded to another.
func (r Report) Targets() []Target {
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	ratio := func(what, key string, want float64) Target {
		row, ok := r.row(key)
		if !ok {
			return Target{What: what, Measured: "not run"}
		}
		return Target{what, formatRatio(r.Ratio(row)), verdict(r.Ratio(row) >= want)}
	}
	out := []Target{
		ratio("branch pipeline >= 0.50 of the ceiling", KeyBranch, 0.50),
		ratio("status table >= 0.33 of the ceiling", KeyStatus, 1.0/3),
		ratio("status table restored from its source (changelog: source) >= 0.33 of the ceiling", KeyStatusSource, 1.0/3),
		ratio("status and aggregate tables >= 0.35 of the ceiling", KeyTables, 0.35),
	}
	billing := Target{What: "billing end to end on MariaDB >= 5,000/s", Measured: "not run"}
	if row, ok := r.row(KeyBillingMySQL); ok {
		billing.Measured, billing.Verdict = Thousands(int64(row.Rate))+"/s", verdict(row.Rate >= 5_000)
	}
	out = append(out, billing)
	p99 := Target{What: "branch pipeline p99 < 50 ms at 5,000/s", Measured: "not run"}
	if row, ok := r.row(KeyBranch); ok {
		l := row.Latency
		p99.Measured = FormatLatency(l.P99)
		if l.Rate == 5_000 {
			p99.Verdict = verdict(l.P99 < 50*time.Millisecond)
		} else {
			p99.Measured += " at " + l.At
			p99.Verdict = "not measured at 5,000/s"
		}
	}
	out = append(out, p99)
	for _, q := range []struct {
		what, key string
		want      time.Duration
	}{
		{"status query p99 < 2 ms at the client's socket, one instance consuming", KeyQueries, 2 * time.Millisecond},
		{"status query p99 < 2 ms at the client's socket, answered by the instance asked, two instances", KeyQueries2Local, 2 * time.Millisecond},
		{"status query p99 < 10 ms at the client's socket, forwarded to the other instance", KeyQueries2Forwarded, 10 * time.Millisecond},
	} {
		t := Target{What: q.what, Measured: "not run"}
		if row, ok := r.row(q.key); ok {
			t.Measured, t.Verdict = FormatLatency(row.Latency.P99), verdict(row.Latency.P99 < q.want)
		}
		out = append(out, t)
	}
	return out
}

// Markdown is BENCHMARKS.md: the run's description, the table, the
// targets, how it was measured (HowMeasured) and each scenario's batching
// and latency samples.
func (r Report) Markdown() string {
	var w strings.Builder
	w.WriteString("# Benchmarks\n\nWritten by `make bench` (`BenchmarkScenarios` in `engine/scenarios_bench_test.go`); each run overwrites it.\n\n")
	if r.Draft != "" {
		fmt.Fprintf(&w, "> **Draft, not the project's figures**: a run with %s. `make bench` on a quiet machine writes the real table.\n\n", r.Draft)
	}
	if r.Note != "" {
		fmt.Fprintf(&w, "> %s\n\n", r.Note)
	}
	fmt.Fprintf(&w, "- Run: %s\n- Go: %s\n- CPU: %s, %d cores\n- Memory: %s\n- Commit: %s\n",
		r.Started.UTC().Format("2006-01-02 15:04 UTC"), r.Env.Go, r.Env.CPU, r.Env.Cores, r.Env.Memory, r.Env.Commit)
	if r.Setup != "" {
		fmt.Fprintf(&w, "- Setup: %s\n", r.Setup)
	}
	w.WriteString("\n" + r.Table())
	if warn := r.Warning(); warn != "" {
		fmt.Fprintf(&w, "\n> **Warning**: %s\n", warn)
	}
	w.WriteString("\n## Targets\n\n| target | measured | |\n| --- | --- | --- |\n")
	for _, t := range r.Targets() {
		fmt.Fprintf(&w, "| %s | %s | %s |\n", t.What, t.Measured, t.Verdict)
	}
	w.WriteString("\n## How measured\n\n" + strings.TrimSpace(HowMeasured) + "\n\n## Scenarios\n\n")
	for _, row := range r.Rows {
		if row.Skipped != "" {
			fmt.Fprintf(&w, "- **%s**: skipped (%s).\n", row.Key, row.Skipped)
			continue
		}
		fmt.Fprintf(&w, "- **%s** (`%s`): batching %s; ", row.Key, row.File, row.Batching)
		if row.Latency.Rate == 0 {
			fmt.Fprintf(&w, "%s queries answered", Thousands(int64(row.Latency.Samples)))
		} else {
			fmt.Fprintf(&w, "%s latency samples", Thousands(int64(row.Latency.Samples)))
		}
		if len(row.Runs) > 1 {
			rates := make([]string, len(row.Runs))
			for i, r := range row.Runs {
				rates[i] = Thousands(int64(r))
			}
			fmt.Fprintf(&w, ", records/s of its %d runs %s (the table has the median)", len(row.Runs), strings.Join(rates, ", "))
		}
		if row.Latency.Missing > 0 {
			fmt.Fprintf(&w, ", %d records produced after the warm-up that had not arrived when the phase ended", row.Latency.Missing)
		}
		if row.Latency.Duplicates > 0 {
			fmt.Fprintf(&w, ", %d records that arrived twice", row.Latency.Duplicates)
		}
		w.WriteString(".\n")
	}
	return w.String()
}
