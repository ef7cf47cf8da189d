package store

import (
	"fmt"
	"time"
)

// Record returns t as a plain record of the Avro schema billing.Transaction
// (see package avro): what Schema.Encode takes.
func (t Transaction) Record() map[string]any {
	rec := map[string]any{
		"transaction_id":   t.ID,
		"client_id":        t.ClientID,
		"amount_minor":     t.AmountMinor,
		"currency":         t.Currency,
		"status":           string(t.Status),
		"description":      t.Description,
		"created_at":       t.CreatedAt.UTC(),
		"updated_at":       t.UpdatedAt.UTC(),
		"billed_at":        nil,
		"billing_cycle_id": nil,
	}
	if !t.BilledAt.IsZero() {
		rec["billed_at"] = t.BilledAt.UTC()
	}
	if t.BillingCycleID != "" {
		rec["billing_cycle_id"] = t.BillingCycleID
	}
	return rec
}

// TransactionFromRecord reads a decoded billing.Transaction plain record.
// It checks the Go types of the fields, not their values (see Check).
func TransactionFromRecord(rec map[string]any) (Transaction, error) {
	var t Transaction
	var errs []string
	str := func(name string, dst *string, optional bool) {
		switch v := rec[name].(type) {
		case string:
			*dst = v
		case nil:
			if !optional {
				errs = append(errs, name+": missing")
			}
		default:
			errs = append(errs, fmt.Sprintf("%s: want a string, got %T", name, v))
		}
	}
	ts := func(name string, dst *time.Time, optional bool) {
		switch v := rec[name].(type) {
		case time.Time:
			*dst = v
		case nil:
			if !optional {
				errs = append(errs, name+": missing")
			}
		default:
			errs = append(errs, fmt.Sprintf("%s: want a timestamp, got %T", name, v))
		}
	}
	var status string
	str("transaction_id", &t.ID, false)
	str("client_id", &t.ClientID, false)
	str("currency", &t.Currency, false)
	str("status", &status, false)
	str("description", &t.Description, true)
	str("billing_cycle_id", &t.BillingCycleID, true)
	ts("created_at", &t.CreatedAt, false)
	ts("updated_at", &t.UpdatedAt, false)
	ts("billed_at", &t.BilledAt, true)
	switch v := rec["amount_minor"].(type) {
	case int64:
		t.AmountMinor = v
	case int32:
		t.AmountMinor = int64(v)
	default:
		errs = append(errs, fmt.Sprintf("amount_minor: want a long, got %T", v))
	}
	t.Status = TxStatus(status)
	if len(errs) > 0 {
		return t, fmt.Errorf("%w: %v", ErrInvalid, errs)
	}
	t.normalize()
	return t, nil
}
