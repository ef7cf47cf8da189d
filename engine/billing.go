package engine

import (
	"context"
	"slices"
	"time"

	"github.com/billing-engine/billing/engine/avro"
	"github.com/billing-engine/billing/engine/internal/billing"
	"github.com/billing-engine/billing/engine/internal/httpapi"
	"github.com/billing-engine/billing/engine/internal/pipeline"
)

// invoicesTopic is where the outbox relay publishes the invoices billing
// cycles write (Avro billing.Invoice, key = invoice_id).
const invoicesTopic = "invoices"

// invoiceSchema returns the billing.Invoice schema, or nil when the
// pipeline file's schemas have none (a pipeline that is not billing):
// then no invoices topic is created and invoices are not published.
func (e *Engine) invoiceSchema() *avro.Schema {
	s, err := e.reg.Schema("billing.Invoice")
	if err != nil {
		return nil
	}
	return s
}

// topicSpecs returns the topics Run creates: those of the pipelines, and
// the invoices topic when there is an invoice schema and no pipeline
// names it already (then its settings under topics: apply).
func (e *Engine) topicSpecs() []pipeline.TopicSpec {
	specs := e.file.TopicSpecs()
	declared := slices.ContainsFunc(specs, func(s pipeline.TopicSpec) bool { return s.Name == invoicesTopic })
	if declared || e.invoiceSchema() == nil {
		return specs
	}
	return append(specs, pipeline.TopicSpec{Name: invoicesTopic, Partitions: e.file.Kafka.Partitions,
		ReplicationFactor: e.file.Kafka.ReplicationFactor})
}

// cycleDrain bounds how long a stopping engine waits for the billing
// cycles in progress before it closes the database.
const cycleDrain = time.Minute

// registerBilling adds the billing cycle and invoice endpoints, and the
// seed's GET /executeBillingCycle/{interval}; the database must be open.
func (e *Engine) registerBilling(api *httpapi.Server) {
	e.cycles = billing.NewCycles(e.db, billing.Logger(e.log))
	httpapi.RegisterBilling(api, e.db, e.cycles, httpapi.BillingLogger(e.log))
}

// waitCycles waits, up to cycleDrain, for the billing cycles in progress
// to finish: Run calls it once the HTTP server has stopped, before it
// closes the database. A cycle still running after that stays RUNNING in
// the database; its work so far is kept.
func (e *Engine) waitCycles() error {
	if e.cycles == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), cycleDrain)
	defer cancel()
	if err := e.cycles.Wait(ctx); err != nil {
		e.log.Warn("billing cycles cut short by the shutdown stay RUNNING; their work so far is kept", "err", err)
	}
	return nil
}
