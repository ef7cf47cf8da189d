package avro_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/linkedin/goavro/v2"
)

// BenchmarkDecode decodes a current billing.Transaction with the current
// schema: the engine's hot path (unions unwrapped, no projection).
func BenchmarkDecode(b *testing.B) {
	reg := loadSchemas(b)
	tx := mustSchema(b, reg, "Transaction")
	msg := mustEncode(b, tx, transaction())
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Decode(tx, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeGoavroBaseline is goavro decoding the same body with no
// fingerprint lookup, union unwrapping or projection: the floor Decode is
// built on, to measure this package's overhead against.
func BenchmarkDecodeGoavroBaseline(b *testing.B) {
	reg := loadSchemas(b)
	tx := mustSchema(b, reg, "Transaction")
	msg := mustEncode(b, tx, transaction())
	src, err := os.ReadFile(filepath.Join(schemasDir, "transaction.avsc"))
	if err != nil {
		b.Fatal(err)
	}
	codec, err := goavro.NewCodec(string(src))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := codec.NativeFromBinary(msg[10:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeOldWriter decodes a v1 billing.Transaction with the current
// schema (cached projection: three defaults added).
func BenchmarkDecodeOldWriter(b *testing.B) {
	reg := loadSchemas(b)
	tx := mustSchema(b, reg, "Transaction")
	msg := mustEncode(b, v1Transaction(b, reg), v1Record())
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Decode(tx, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeInvoice decodes a billing.Invoice with 10 lines, which
// includes the pre-scan guarding array allocation.
func BenchmarkDecodeInvoice(b *testing.B) {
	reg := loadSchemas(b)
	inv := mustSchema(b, reg, "Invoice")
	lines := make([]any, 10)
	for i := range lines {
		lines[i] = map[string]any{"transaction_id": "tx-0001", "description": "Coffee beans, 1kg", "amount_minor": int64(1234)}
	}
	msg := mustEncode(b, inv, map[string]any{
		"invoice_id": "inv-1", "invoice_number": "2024-000123", "client_id": "client-42",
		"billing_cycle_id": "cycle-2024-03", "currency": "EUR", "period_start": created, "period_end": updated,
		"lines": lines, "subtotal_minor": int64(12340), "total_minor": int64(12340), "created_at": created,
	})
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Decode(inv, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeParallel is BenchmarkDecode from all Ps at once, to show
// the lock-free lookups scale.
func BenchmarkDecodeParallel(b *testing.B) {
	reg := loadSchemas(b)
	tx := mustSchema(b, reg, "Transaction")
	msg := mustEncode(b, tx, transaction())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := reg.Decode(tx, msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkEncode encodes a billing.Transaction (two union fields wrapped).
func BenchmarkEncode(b *testing.B) {
	reg := loadSchemas(b)
	tx := mustSchema(b, reg, "Transaction")
	rec := transaction()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = tx.AppendEncode(buf[:0], rec); err != nil {
			b.Fatal(err)
		}
	}
}
