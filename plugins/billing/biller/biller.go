// Package biller is the billing plugin's Processor: it bills the APPROVED
// transactions of a billing.Transaction pipeline in the database, and
// emits each BILLED version, and it records a credit for each REFUNDED
// transaction that had been billed.
//
// Billing goes through store.Bill, the same path billing cycles take, one
// call per batch. Each record bills under its own reference, the record's
// topic, partition and offset, which makes the plugin idempotent in both
// directions the engine needs:
//
//   - A batch retried after its Kafka transaction failed (the engine or
//     the plugin crashed, the broker was unreachable) finds the rows it
//     billed itself and emits the same BILLED versions again, so the
//     records that failed to commit are not lost.
//   - A replayed APPROVED record (another offset), or one a billing cycle
//     billed first, changes nothing and emits nothing.
//
// Records of any other status pass with no output. A record that is not a
// valid transaction goes to the dead-letter queue with the reason; a
// database that cannot be reached fails the batch with sdk.ErrUnavailable,
// so the engine retries it until the database is back, and nothing is
// dead-lettered or skipped meanwhile.
package biller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/billing-engine/billing/engine/avro"
	"github.com/billing-engine/billing/engine/sdk"
	"github.com/billing-engine/billing/engine/store"
)

// Name is the plugin's name.
const Name = "billing"

// Output is the default output the BILLED versions are emitted to; the
// pipeline maps it to the transactions topic.
const Output = "billed"

// Info describes the plugin.
var Info = sdk.Info{Name: Name, Outputs: []string{Output}}

// settings are the plugin's settings and their defaults.
var settings = map[string]string{
	"dsn":      "embedded", // the store: "embedded" (SQLite under data_dir) or mysql://...
	"data_dir": "./data",   // where the embedded SQLite database is
	"output":   Output,     // the output BILLED versions go to
}

// Biller is the Processor. It is safe for concurrent use.
type Biller struct {
	db     *store.DB
	schema *avro.Schema
	output string
	log    *slog.Logger
}

// New builds a Biller from cfg: it opens the store (applying its
// migrations) and loads the billing.Transaction schema from
// cfg.SchemasDir. The pipeline's source schema must be
// billing.Transaction.
func New(ctx context.Context, cfg sdk.Config) (sdk.Processor, error) {
	s := map[string]string{}
	for k, v := range cfg.Settings {
		if _, ok := settings[k]; !ok {
			return nil, fmt.Errorf("unknown setting %q (known: %s)", k, strings.Join(slices.Sorted(maps.Keys(settings)), ", "))
		}
		str, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("setting %s: want a string, got %T", k, v)
		}
		s[k] = str
	}
	get := func(k string) string {
		if v := s[k]; v != "" {
			return v
		}
		return settings[k]
	}
	if cfg.Schema != "" && cfg.Schema != "billing.Transaction" {
		return nil, fmt.Errorf("the billing plugin reads billing.Transaction records; the pipeline's source schema is %s", cfg.Schema)
	}
	reg, err := avro.LoadDir(cfg.SchemasDir)
	if err != nil {
		return nil, fmt.Errorf("schemas: %w", err)
	}
	schema, err := reg.Schema("billing.Transaction")
	if err != nil {
		return nil, fmt.Errorf("schemas: %w", err)
	}
	db, err := store.Open(ctx, get("dsn"), store.DataDir(get("data_dir")))
	if err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	cfg.Log().Info("billing plugin ready", "database", db.String())
	return &Biller{db: db, schema: schema, output: get("output"), log: cfg.Log()}, nil
}

// Close closes the store.
func (b *Biller) Close() error { return b.db.Close() }

// Process bills the batch's APPROVED records and credits its REFUNDED
// ones, each kind with one database call.
func (b *Biller) Process(ctx context.Context, batch []sdk.Record) ([]sdk.Result, error) {
	results := make([]sdk.Result, len(batch))
	var reqs []store.BillRequest
	var reqAt []int
	var refunds []store.Transaction
	for i, r := range batch {
		if r.Data == nil {
			results[i].DLQ = "billing: record not decoded"
			continue
		}
		t, err := store.TransactionFromRecord(r.Data)
		if err == nil {
			err = t.Check()
		}
		if err != nil {
			results[i].DLQ = "billing: " + err.Error()
			continue
		}
		switch t.Status {
		case store.StatusApproved:
			reqs = append(reqs, store.BillRequest{Transaction: t, Ref: Ref(r)})
			reqAt = append(reqAt, i)
		case store.StatusRefunded:
			refunds = append(refunds, t)
		}
	}
	if len(reqs) > 0 {
		res, err := b.db.Bill(ctx, reqs, store.BillOptions{})
		if err != nil {
			return nil, dbError("bill", err)
		}
		for j, r := range res {
			if r.Outcome != store.Billed && r.Outcome != store.BilledBefore {
				continue
			}
			value, err := b.schema.Encode(r.Transaction.Record())
			if err != nil {
				return nil, fmt.Errorf("billing: encode %s: %w", r.Transaction.ID, err)
			}
			results[reqAt[j]].Emits = []sdk.Emit{{Output: b.output, Key: []byte(r.Transaction.ID), Value: value}}
		}
	}
	if len(refunds) > 0 {
		created, err := b.db.Credit(ctx, refunds)
		if err != nil {
			return nil, dbError("credit", err)
		}
		if n := count(created); n > 0 {
			b.log.Debug("credits recorded", "credits", n)
		}
	}
	return results, nil
}

// Ref is the billing reference of a record: where it was consumed.
func Ref(r sdk.Record) string { return fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset) }

// dbError classifies a store error: a value the store refuses fails the
// batch (the engine retries it, then dead-letters it); anything else is
// the database being unreachable or failing, which is waited out.
func dbError(op string, err error) error {
	if errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("billing: %s: %w", op, err)
	}
	return fmt.Errorf("billing: %s: %w", op, sdk.Unavailable(err))
}

func count(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
