// Package metrics holds the engine's Prometheus metrics: what the pipelines
// consumed, produced, dropped and dead-lettered (counted once a batch has
// committed), consumer lag, batch and end-to-end latency, plugin calls and
// restarts, tables, the outbox and the HTTP API. Every Metrics has its own
// registry, so several engines in one process do not share counts.
package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/billing-engine/billing/engine/internal/stream"
)

// Namespace prefixes every metric name.
const Namespace = "billing"

// maxReasons bounds the distinct values of the DLQ reason label; reasons
// beyond it are counted as "other".
const maxReasons = 64

// Metrics is the engine's metrics. It is safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	consumed     *prometheus.CounterVec
	produced     *prometheus.CounterVec
	dropped      *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	lag          *prometheus.GaugeVec
	batch        *prometheus.HistogramVec
	endToEnd     *prometheus.HistogramVec
	tableUpdates *prometheus.CounterVec
	retries      *prometheus.CounterVec
	pluginCalls  *prometheus.HistogramVec
	httpRequests *prometheus.HistogramVec

	mu      sync.Mutex
	reasons map[string]bool
}

// latencyBuckets span 0.5 ms to about 33 s.
var latencyBuckets = prometheus.ExponentialBuckets(0.0005, 2, 17)

// New returns Metrics with every metric registered, and the Go runtime and
// process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), reasons: map[string]bool{}}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
		m.reg.MustRegister(c)
		return c
	}
	histogram := func(name, help string, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: latencyBuckets}, labels)
		m.reg.MustRegister(h)
		return h
	}
	m.consumed = counter("records_consumed_total", "Records read from a pipeline's source, counted when their batch committed.", "pipeline")
	m.produced = counter("records_produced_total", "Records written by a pipeline's stage to a topic (a branch's topic, a sink, a changelog, the DLQ), counted when committed.", "pipeline", "stage", "topic")
	m.dropped = counter("records_dropped_total", "Records a filter stage dropped.", "pipeline", "stage")
	m.deadLettered = counter("dlq_records_total", "Records sent to the DLQ, by stage and reason (the reason's text before its first colon).", "pipeline", "stage", "reason")
	m.retries = counter("stage_retries_total", "Failed attempts of a stage on a batch that is tried again; reason unavailable (a dependency is down: the batch waits, without limit) or error (counted against the stage's retries).", "pipeline", "stage", "reason")
	m.tableUpdates = counter("table_updates_total", "Keys a table changed, one per key changed in a batch: its changelog records (or, restored from its source, its store writes).", "pipeline", "table")
	m.lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "consumer_lag_records", Help: "Records of a source partition still to be read after the last committed batch."}, []string{"pipeline", "topic", "partition"})
	m.reg.MustRegister(m.lag)
	m.batch = histogram("batch_duration_seconds", "Time to process and commit one batch.", "pipeline")
	m.endToEnd = histogram("end_to_end_latency_seconds", "From a source record's timestamp (its produce time) to the commit of its batch.", "pipeline")
	m.pluginCalls = histogram("plugin_call_duration_seconds", "Duration of a stage's Process calls, by plugin and result (ok or error).", "pipeline", "stage", "plugin", "result")
	m.httpRequests = histogram("http_request_duration_seconds", "HTTP requests by route pattern, method and status code.", "route", "method", "code")
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the registry the metrics are in, for tests and extra
// collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Committed implements stream.Observer.
func (m *Metrics) Committed(pipeline string, b *stream.Batch) {
	m.consumed.WithLabelValues(pipeline).Add(float64(len(b.Inputs)))
	for i := range b.Outputs {
		if d := b.Outputs[i].DeadLetter; d != nil {
			m.deadLettered.WithLabelValues(pipeline, d.Stage, m.reasonClass(d.Reason)).Inc()
		}
	}
	for k, n := range b.Produced() {
		m.produced.WithLabelValues(pipeline, k.Stage, k.Topic).Add(float64(n))
		if table, ok := strings.CutPrefix(k.Stage, "table:"); ok {
			m.tableUpdates.WithLabelValues(pipeline, table).Add(float64(n))
		}
	}
	for table, n := range b.SourceTableWrites {
		m.tableUpdates.WithLabelValues(pipeline, table).Add(float64(n))
	}
	for stage, n := range b.Dropped {
		m.dropped.WithLabelValues(pipeline, stage).Add(float64(n))
	}
	m.lag.WithLabelValues(pipeline, b.Topic, strconv.Itoa(int(b.Partition))).Set(float64(b.Lag))
	m.batch.WithLabelValues(pipeline).Observe(b.Took.Seconds())
	e2e := m.endToEnd.WithLabelValues(pipeline)
	now := time.Now()
	for _, in := range b.Inputs {
		if !in.Timestamp.IsZero() {
			e2e.Observe(max(0, now.Sub(in.Timestamp).Seconds()))
		}
	}
}

// Retrying implements stream.Observer.
func (m *Metrics) Retrying(pipeline, stage string, unavailable bool) {
	reason := "error"
	if unavailable {
		reason = "unavailable"
	}
	m.retries.WithLabelValues(pipeline, stage, reason).Inc()
}

// reasonClass is the label value of a DLQ reason: its text before the
// first colon, at most 64 distinct values.
func (m *Metrics) reasonClass(reason string) string {
	class, _, _ := strings.Cut(reason, ":")
	class = strings.TrimSpace(class)
	if len(class) > 60 {
		class = class[:60]
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.reasons[class] {
		if len(m.reasons) >= maxReasons {
			return "other"
		}
		m.reasons[class] = true
	}
	return class
}

// PluginCall records one Process call of plugin at a stage.
func (m *Metrics) PluginCall(pipeline, stage, plugin string, took time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.pluginCalls.WithLabelValues(pipeline, stage, plugin, result).Observe(took.Seconds())
}

// HTTPRequest records one answered request; route is the matched pattern
// without its method ("" when nothing matched, recorded as "unmatched").
func (m *Metrics) HTTPRequest(route, method string, status int, took time.Duration) {
	if _, path, ok := strings.Cut(route, " "); ok {
		route = path
	}
	if route == "" {
		route = "unmatched"
	}
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Observe(took.Seconds())
}

// CounterFunc registers a counter whose value f returns at each scrape.
func (m *Metrics) CounterFunc(name, help string, labels prometheus.Labels, f func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help, ConstLabels: labels}, f))
}

// GaugeFunc registers a gauge whose value f returns at each scrape.
func (m *Metrics) GaugeFunc(name, help string, labels prometheus.Labels, f func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help, ConstLabels: labels}, f))
}

// Collect registers a collector of metrics that are computed at scrape
// time, such as table sizes.
func (m *Metrics) Collect(c prometheus.Collector) { m.reg.MustRegister(c) }
