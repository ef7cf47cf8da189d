package avro_test

import (
	"reflect"
	"testing"

	"github.com/billing-engine/billing/engine/avro"
)

// FuzzDecode checks that Decode never panics and that whatever it accepts
// re-encodes to a value that decodes the same.
func FuzzDecode(f *testing.F) {
	reg := loadSchemas(f)
	tx := mustSchema(f, reg, "Transaction")
	inv := mustSchema(f, reg, "Invoice")
	valid := mustEncode(f, tx, transaction())
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(valid[:10])
	f.Add(mustEncode(f, v1Transaction(f, reg), v1Record()))
	f.Add(mustEncode(f, inv, map[string]any{
		"invoice_id": "i", "invoice_number": "1", "client_id": "c", "billing_cycle_id": "b",
		"currency": "EUR", "period_start": created, "period_end": updated,
		"lines":          []any{map[string]any{"transaction_id": "t", "description": "d", "amount_minor": int64(5)}},
		"subtotal_minor": int64(5), "total_minor": int64(5), "created_at": created,
	}))
	f.Add([]byte("garbage that is not avro"))
	f.Add([]byte{0xC3, 0x01})
	f.Add(append([]byte{0xC3, 0x01}, valid[2:10]...))

	f.Fuzz(func(t *testing.T, b []byte) {
		for _, reader := range []*avro.Schema{nil, tx, inv} {
			_, _ = reg.Decode(reader, b)
		}
		rec, err := reg.Decode(nil, b)
		if err != nil {
			return
		}
		w, err := reg.Writer(b)
		if err != nil {
			t.Fatalf("Decode accepted bytes Writer rejects: %v", err)
		}
		again, err := w.Encode(rec)
		if err != nil {
			t.Fatalf("re-Encode of decoded %v: %v", rec, err)
		}
		rec2, err := reg.Decode(nil, again)
		if err != nil || !reflect.DeepEqual(rec, rec2) {
			t.Fatalf("decode(encode(decode(b))) = %v, %v; want %v", rec2, err, rec)
		}
	})
}
