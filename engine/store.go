package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/IBM/sarama"

	"github.com/billing-engine/billing/engine/internal/httpapi"
	"github.com/billing-engine/billing/engine/internal/outbox"
	"github.com/billing-engine/billing/engine/sdk"
	"github.com/billing-engine/billing/engine/store"
)

// dbUpsertPlugin is the in-process plugin that mirrors a pipeline of
// billing.Transaction records into the database (store.NewUpsertProcessor).
// Its name is known to validation from the start; its factory is
// registered when Run has opened the database.
const dbUpsertPlugin = store.UpsertPlugin

// retention is how long sent outbox entries and idempotency keys are kept.
const retention = 24 * time.Hour

// openStore opens the database of the pipeline file (database.dsn),
// applies its migrations, registers the db-upsert plugin and says where
// the database is. The caller MUST close the store.
func (e *Engine) openStore(ctx context.Context) (*store.DB, error) {
	db, err := store.Open(ctx, e.file.Database.DSN, store.DataDir(e.file.DataDir))
	if err != nil {
		return nil, fmt.Errorf("engine: database: %w", err)
	}
	e.log.Info("database: " + db.String())
	if _, ok := e.opts.processors[dbUpsertPlugin]; !ok {
		e.opts.processors[dbUpsertPlugin] = func(_ context.Context, cfg sdk.Config) (sdk.Processor, error) {
			if cfg.Schema != "billing.Transaction" {
				return nil, fmt.Errorf("db-upsert stores billing.Transaction records; the pipeline's source schema is %s", cfg.Schema)
			}
			return store.NewUpsertProcessor(db), nil
		}
	}
	return db, nil
}

// startRelay starts the outbox relay, which publishes what the API
// writes to the transactions topic (and the invoices of billing cycles to
// the invoices topic), and a janitor that purges old outbox entries and
// idempotency keys. The returned func stops both and waits.
func (e *Engine) startRelay(ctx context.Context, brokers []string, cfg *sarama.Config) (func() error, error) {
	schema, err := e.reg.Schema("billing.Transaction")
	if err != nil {
		return nil, fmt.Errorf("engine: outbox relay: %w", err)
	}
	invoice := e.invoiceSchema()
	if invoice == nil {
		e.log.Warn("no billing.Invoice schema: invoices written by billing cycles are not published")
	}
	relay, err := outbox.New(outbox.Config{
		Brokers: brokers, Sarama: cfg, Store: e.db, Schema: schema, InvoiceSchema: invoice, InvoiceTopic: invoicesTopic,
		ApplicationID: e.file.ApplicationID, CreateTopic: e.file.Kafka.CreateTopics,
		ReplicationFactor: e.file.Kafka.ReplicationFactor, Owner: relayOwner(e.file.DataDir), Log: e.log,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	go e.purgeEvery(ctx, time.Hour)
	return func() error {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	}, nil
}

// relayOwner names this engine in the relay lease: its host and data
// directory, which a restarted engine shares with the one it replaces (so
// it takes the lease back at once) and two running engines do not.
func relayOwner(dataDir string) string {
	host, _ := os.Hostname()
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	return host + ":" + dataDir
}

// purgeEvery deletes sent outbox entries and idempotency keys older than
// retention, every interval, until ctx ends.
func (e *Engine) purgeEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := e.db.Purge(ctx, time.Now().Add(-retention)); err != nil && ctx.Err() == nil {
				e.log.Warn("database purge", "err", err)
			} else if n > 0 {
				e.log.Info("database purge", "rows", n)
			}
		}
	}
}

// registerCRUD adds the client and transaction endpoints, and the
// billing ones (see registerBilling), when the database is open.
func (e *Engine) registerCRUD(api *httpapi.Server) {
	if e.db != nil {
		httpapi.RegisterCRUD(api, e.db, httpapi.CRUDLogger(e.log))
		e.registerBilling(api)
	}
}
