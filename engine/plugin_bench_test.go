package engine_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"text/template"

	"github.com/billing-engine/billing/engine"
	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/internal/testproc"
)

// noopPipeline is the branch pipeline (benchmark file branch.yaml) with one
// more stage before the branches: the no-op plugin, which passes every
// record on. Declared with a command it runs out-of-process; without, the
// engine runs the same Processor in-process.
var noopPipeline = template.Must(template.New("p").Parse(`version: 1
application_id: ${BILLING_APPLICATION_ID}
data_dir: ${BILLING_DATA_DIR}
schemas: {{.Schemas}}
kafka:
  brokers: ${BILLING_KAFKA_BROKERS}
  partitions: 8
http:
  listen: ${BILLING_HTTP_LISTEN}
topics:
  transactions.dlq: {partitions: 8}
plugins:
  noop:
{{- if .Command}}
    command: {{.Command}}
{{- end}}
    config: {output: next, raw: {{.Raw}}}
pipelines:
  - name: processor
    source: {topic: transactions, schema: Transaction, max_batch: {{.MaxBatch}}, max_wait: 5ms}
    stages:
      - name: valid
        filter: amount_minor > 0 && len(currency) == 3
      - name: noop
        plugin: noop
    branches:
      - {name: approved, when: 'status == "APPROVED"', to: transactions.approved}
      - {name: declined, when: 'status == "DECLINED"', to: transactions.declined}
      - {name: refunded, when: 'status == "REFUNDED"', to: transactions.refunded}
      - {name: billed,   when: 'status == "BILLED"',   to: transactions.billed}
      - {name: unknown-status, default: true, to: transactions.dlq}
    errors: {retries: 3, backoff: 100ms, dlq: transactions.dlq}
`))

// BenchmarkPluginPipeline measures what a plugin's process boundary costs
// a pipeline: records/s through the branch pipeline with a no-op plugin
// stage (the host's test plugin, passing every record on), the stage run
// in-process and out-of-process, at max_batch 1, 100 and 1000, on one
// embedded broker over the same records, exactly-once. Out-of-process it
// runs twice: declaring that it reads no Data (sdk.DataUser), as a no-op
// does, and reading Data, so the plugin decodes every value with the SDK.
// It reports each rate and its ratio to the in-process rate at the same
// batch size. Run it with -benchtime 1x; BENCH_PLUGIN_N sets the records
// per run at batch 100 and 1000 (default 200,000; a tenth at batch 1).
func BenchmarkPluginPipeline(b *testing.B) {
	n := envInt(b, "BENCH_PLUGIN_N", 200_000)
	bin := enginetest.BuildPlugin(b, "engine/internal/pluginhost/testdata/testplugin")
	for i := 0; i < b.N; i++ {
		br := enginetest.StartBroker(b)
		produceBench(b, br.Addr(), n)
		for _, size := range []int{1, 100, 1000} {
			records := n
			if size == 1 {
				records = n / 10 // a batch per record: slow, the same for every variant
			}
			run := func(variant, command string, raw bool) float64 {
				path := writeNoopPipeline(b, command, raw, size)
				app := fmt.Sprintf("bench-noop-%s-%d", variant, size)
				return benchEngineAt(b, br.Addr(), path, app, records, nil, engine.WithProcessor("noop", testproc.New))
			}
			in := run("in", "", true)
			out := run("out", bin, true)
			outData := run("out-data", bin, false)
			b.ReportMetric(in, fmt.Sprintf("in-process_b%d_rec/s", size))
			b.ReportMetric(out, fmt.Sprintf("out-of-process_b%d_rec/s", size))
			b.ReportMetric(out/in, fmt.Sprintf("out-of-process_b%d_ratio", size))
			b.ReportMetric(outData/in, fmt.Sprintf("out-of-process-data_b%d_ratio", size))
			b.Logf("max_batch=%d, %d records: in-process %.0f rec/s; out-of-process %.0f rec/s (%.2f); out-of-process reading Data %.0f rec/s (%.2f)",
				size, records, in, out, out/in, outData, outData/in)
		}
		br.Close()
	}
}

// writeNoopPipeline writes noopPipeline into a temporary directory and
// returns its path; command "" runs the plugin in-process.
func writeNoopPipeline(b *testing.B, command string, raw bool, maxBatch int) string {
	b.Helper()
	var buf bytes.Buffer
	err := noopPipeline.Execute(&buf, map[string]any{
		"Schemas": filepath.Join(enginetest.RepoRoot(b), "schemas"), "Command": command, "Raw": raw, "MaxBatch": maxBatch,
	})
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "noop.yaml")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}
