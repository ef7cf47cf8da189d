package engine_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/billing-engine/billing/engine/enginetest"
)

// TestMetricsMatchTheRun runs a mixed workload through the processor and
// checks that /metrics counts exactly what reached each branch topic, the
// DLQ and the filter, and what the source held.
func TestMetricsMatchTheRun(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; run without -short")
	}
	b := enginetest.StartBroker(t)
	vars := env(t, b.Addr())
	startEngine(t, vars)
	const n, garbage = 5_000, 40
	w := newWorkload(t, registry(t), n, garbage)
	produceKgo(t, b.Addr(), w.records)
	checkOutputs(t, b.Addr(), w) // everything committed and read back

	base := "http://" + vars["BILLING_HTTP_LISTEN"]
	// The records are on their topics; the counters follow the commit in
	// the same goroutine, so they are final by now, but a scrape may still
	// race the last batch's observer call: poll briefly.
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(10 * time.Second)
	for {
		fams = scrape(t, base+"/metrics")
		if sumOf(fams["billing_records_consumed_total"], map[string]string{"pipeline": "processor"}) >= n+garbage || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	processor := map[string]string{"pipeline": "processor"}
	if got := sumOf(fams["billing_records_consumed_total"], processor); got != n+garbage {
		t.Errorf("consumed by processor: %v, want %d", got, n+garbage)
	}
	for _, topic := range []string{"transactions.approved", "transactions.declined", "transactions.refunded", "transactions.billed", "transactions.dlq"} {
		got := sumOf(fams["billing_records_produced_total"], map[string]string{"pipeline": "processor", "topic": topic})
		if int(got) != len(w.want[topic]) {
			t.Errorf("produced to %s: metric %v, records on the topic %d", topic, got, len(w.want[topic]))
		}
	}
	if got := sumOf(fams["billing_dlq_records_total"], map[string]string{"pipeline": "processor", "stage": "decode"}); got != garbage {
		t.Errorf("dead-lettered at decode: %v, want %d", got, garbage)
	}
	pending := len(w.want["transactions.dlq"]) - garbage
	if got := sumOf(fams["billing_dlq_records_total"], map[string]string{"pipeline": "processor", "stage": "branch"}); int(got) != pending {
		t.Errorf("dead-lettered at branch: %v, want %d", got, pending)
	}
	if got := sumOf(fams["billing_records_dropped_total"], processor); int(got) != len(w.dropped) {
		t.Errorf("dropped: %v, want %d", got, len(w.dropped))
	}
	if got := sumOf(fams["billing_table_updates_total"], map[string]string{"table": "transaction_status"}); got < float64(n-len(w.dropped)-pending) {
		t.Errorf("transaction_status updates: %v, want at least %d", got, n-len(w.dropped)-pending)
	}
	for _, name := range []string{
		"billing_consumer_lag_records", "billing_batch_duration_seconds", "billing_end_to_end_latency_seconds",
		"billing_plugin_call_duration_seconds", "billing_outbox_backlog",
		"billing_table_disk_bytes", "billing_table_partitions_restoring", "billing_table_restored_records_total",
	} {
		if fams[name] == nil || len(fams[name].Metric) == 0 {
			t.Errorf("metric %s missing", name)
		}
	}
	if got := sumOf(fams["billing_consumer_lag_records"], processor); got != 0 {
		t.Errorf("processor lag after the run: %v, want 0", got)
	}
	if h := fams["billing_end_to_end_latency_seconds"]; h != nil {
		var count uint64
		for _, m := range h.Metric {
			if labelsMatch(m, processor) {
				count += m.GetHistogram().GetSampleCount()
			}
		}
		if count != n+garbage {
			t.Errorf("end-to-end latency samples for processor: %d, want %d", count, n+garbage)
		}
	}

	// The same counts through the dashboard's API.
	var dlq struct {
		Items []struct{ Pipeline, Stage, Reason, Key, Topic string }
	}
	decodeGET(t, base+"/api/v1/dlq?limit=100", &dlq)
	fromProcessor := 0
	for _, it := range dlq.Items {
		if it.Pipeline == "processor" {
			fromProcessor++
		}
		if it.Reason == "" || it.Stage == "" || it.Topic != "transactions" || it.Key == "" {
			t.Errorf("dead letter without its details: %+v", it)
		}
	}
	// Other pipelines on transactions (store) dead-letter the garbage too.
	if fromProcessor != len(w.want["transactions.dlq"]) {
		t.Errorf("GET /api/v1/dlq: %d items from processor, want %d", fromProcessor, len(w.want["transactions.dlq"]))
	}
	// A request is observed once its handler returned, which may be just
	// after the client read the answer: look again for a moment.
	var h *dto.MetricFamily
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		h = scrape(t, base+"/metrics")["billing_http_request_duration_seconds"]
		if h != nil && hasSeries(h, map[string]string{"route": "/api/v1/dlq", "method": "GET", "code": "200"}) &&
			hasSeries(h, map[string]string{"route": "/metrics", "method": "GET", "code": "200"}) || time.Now().After(deadline) {
			break
		}
	}
	if h == nil || !hasSeries(h, map[string]string{"route": "/api/v1/dlq", "method": "GET", "code": "200"}) ||
		!hasSeries(h, map[string]string{"route": "/metrics", "method": "GET", "code": "200"}) {
		t.Errorf("http_request_duration_seconds lacks GET /api/v1/dlq or /metrics 200: %v", h)
	}
	view := firstEvent(t, base+"/api/v1/events")
	for _, p := range view.Pipelines {
		if p.Name != "processor" {
			continue
		}
		if p.Consumed != n+garbage {
			t.Errorf("event stream: processor consumed %d, want %d", p.Consumed, n+garbage)
		}
		routed := map[string]int{}
		for _, st := range p.Stages {
			for _, o := range st.Outputs {
				routed[o.Topic] += o.Records
			}
		}
		if routed["transactions.approved"] != len(w.want["transactions.approved"]) {
			t.Errorf("event stream: %d to transactions.approved, want %d", routed["transactions.approved"], len(w.want["transactions.approved"]))
		}
		return
	}
	t.Errorf("event stream: no processor pipeline in %+v", view)
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// sumOf adds the counter or gauge values of fam's series whose labels
// include want.
func sumOf(fam *dto.MetricFamily, want map[string]string) float64 {
	if fam == nil {
		return 0
	}
	var sum float64
	for _, m := range fam.Metric {
		if !labelsMatch(m, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		}
	}
	return sum
}

func hasSeries(fam *dto.MetricFamily, want map[string]string) bool {
	for _, m := range fam.Metric {
		if labelsMatch(m, want) {
			return true
		}
	}
	return false
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	have := map[string]string{}
	for _, l := range m.Label {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func decodeGET(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// eventView is the JSON of one "stats" event.
type eventView struct {
	Pipelines []struct {
		Name     string
		Consumed int
		Stages   []struct {
			Name    string
			Outputs []struct {
				Topic   string
				Records int
			}
		}
	}
}

// firstEvent reads the first "stats" event of the stream at url.
func firstEvent(t *testing.T, url string) eventView {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("GET %s: Content-Type %q", url, ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		if e, ok := strings.CutPrefix(line, "event: "); ok {
			event = e
			continue
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok && event == "stats" {
			var v eventView
			if err := json.Unmarshal([]byte(data), &v); err != nil {
				t.Fatalf("event data %q: %v", data, err)
			}
			return v
		}
	}
	t.Fatalf("GET %s: stream ended without a stats event: %v", url, sc.Err())
	return eventView{}
}
