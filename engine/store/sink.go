package store

import (
	"context"
	"fmt"

	"github.com/billing-engine/billing/engine/sdk"
)

// UpsertPlugin is the name the engine registers NewUpsertProcessor under.
const UpsertPlugin = "db-upsert"

// upsertProcessor mirrors the records of a billing.Transaction pipeline
// into the store.
type upsertProcessor struct {
	db *DB
}

// NewUpsertProcessor returns the in-process plugin that writes each batch
// of billing.Transaction records to db with one UpsertTransactions call
// (the newer updated_at wins). It emits nothing. A record that cannot be
// stored (not decoded, a missing field, an unknown status, an id or
// description too long) is sent to the dead-letter queue with the reason;
// a database error fails the batch as sdk.ErrUnavailable, which the engine
// retries until the database is back. It is safe for concurrent use.
func NewUpsertProcessor(db *DB) sdk.Processor { return &upsertProcessor{db: db} }

// Process implements sdk.Processor.
func (p *upsertProcessor) Process(ctx context.Context, batch []sdk.Record) ([]sdk.Result, error) {
	results := make([]sdk.Result, len(batch))
	rows := make([]Transaction, 0, len(batch))
	for i, r := range batch {
		if r.Data == nil {
			results[i].DLQ = "db-upsert: record not decoded"
			continue
		}
		t, err := TransactionFromRecord(r.Data)
		if err == nil {
			err = t.Check()
		}
		if err != nil {
			results[i].DLQ = "db-upsert: " + err.Error()
			continue
		}
		rows = append(rows, t)
	}
	if err := p.db.UpsertTransactions(ctx, rows); err != nil {
		// Every row passed Check: the database is what failed. The batch
		// waits for it rather than being dead-lettered.
		return nil, fmt.Errorf("db-upsert: %w", sdk.Unavailable(err))
	}
	return results, nil
}
