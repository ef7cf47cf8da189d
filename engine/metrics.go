package engine

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/billing-engine/billing/engine/internal/stream"
	"github.com/billing-engine/billing/engine/sdk"
)

// observer tells the engine's Stats and metrics about each committed batch.
type observer struct{ e *Engine }

// Committed implements stream.Observer.
func (o observer) Committed(pipeline string, b *stream.Batch) {
	o.e.stats.committed(pipeline, b)
	o.e.metrics.Committed(pipeline, b)
}

// Retrying implements stream.Observer.
func (o observer) Retrying(pipeline, stage string, unavailable bool) {
	o.e.stats.retrying(pipeline, stage)
	o.e.metrics.Retrying(pipeline, stage, unavailable)
}

// registerStateMetrics registers the gauges read at scrape time: table
// sizes and restores, and the outbox backlog. Run calls it once the state
// store and the database are open.
func (e *Engine) registerStateMetrics() {
	if e.state != nil {
		for _, p := range e.file.Pipelines {
			for _, t := range p.Tables {
				labels := prometheus.Labels{"table": t.Name}
				e.metrics.GaugeFunc("table_disk_bytes", "Estimated bytes a table takes in the local state store.", labels, func() float64 {
					n, err := e.state.DiskUsage(t.Name)
					if err != nil {
						return 0
					}
					return float64(n)
				})
				e.metrics.GaugeFunc("table_partitions_restoring", "Partitions of a table being restored (from its changelog, or its source topic).", labels, func() float64 {
					return float64(len(e.tracker.RestoringAll()[t.Name]))
				})
				e.metrics.CounterFunc("table_restored_records_total", "Changelog (or source) records replayed into a table by restores.", labels, func() float64 {
					return float64(e.tracker.Restored()[t.Name])
				})
			}
		}
	}
	if e.db != nil {
		e.metrics.GaugeFunc("outbox_backlog", "Outbox entries (rows written by the API) not yet published to Kafka.", nil, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := e.db.OutboxPending(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		})
	}
}

// timed wraps a stage's processor to record the duration and result of its
// calls. Close passes through.
type timed struct {
	sdk.Processor
	e                     *Engine
	pipeline, stage, name string
}

func (t *timed) Process(ctx context.Context, batch []sdk.Record) ([]sdk.Result, error) {
	start := time.Now()
	res, err := t.Processor.Process(ctx, batch)
	t.e.metrics.PluginCall(t.pipeline, t.stage, t.name, time.Since(start), err)
	return res, err
}

// Close closes the wrapped processor when it holds resources.
func (t *timed) Close() error {
	if c, ok := t.Processor.(sdk.Closer); ok {
		return c.Close()
	}
	return nil
}

// restartCounter is implemented by out-of-process plugins.
type restartCounter interface{ Restarts() int64 }

// instrument wraps proc for metrics and registers its restart count.
func (e *Engine) instrument(proc sdk.Processor, pipeline, stage, name string) sdk.Processor {
	if rc, ok := proc.(restartCounter); ok {
		e.metrics.CounterFunc("plugin_restarts_total", "Times an out-of-process plugin was restarted after a crash or a hang.",
			prometheus.Labels{"pipeline": pipeline, "stage": stage, "plugin": name},
			func() float64 { return float64(rc.Restarts()) })
	}
	return &timed{Processor: proc, e: e, pipeline: pipeline, stage: stage, name: name}
}
