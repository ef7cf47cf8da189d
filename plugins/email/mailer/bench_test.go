package mailer_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/sdk"
	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
	"github.com/billing-engine/billing/plugins/email/mailer"
)

// BenchmarkMailer measures the email plugin's own cost per billed
// transaction, in batches of 500, to a local SMTP server and to the
// outbox folder, on SQLite.
func BenchmarkMailer(b *testing.B) {
	for _, mode := range []string{"smtp", "outbox"} {
		b.Run(mode, func(b *testing.B) {
			dsn := storetest.DSN(b, store.SQLite)
			db, err := store.Open(context.Background(), dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if err := db.CreateClient(context.Background(), store.Client{ID: "c-1", Name: "Ada Lovelace", Email: "ada@example.com", Status: store.ClientActive}, nil); err != nil {
				b.Fatal(err)
			}
			settings := map[string]any{"dsn": dsn, "data_dir": b.TempDir()}
			if mode == "smtp" {
				settings["smtp_addr"] = enginetest.StartSMTP(b).Addr()
			}
			p, err := mailer.New(context.Background(), sdk.Config{Name: "email", Settings: settings, Schema: "billing.Transaction"})
			if err != nil {
				b.Fatal(err)
			}
			defer p.(*mailer.Mailer).Close()
			b.ResetTimer()
			for i := 0; i < b.N; i += 500 {
				batch := make([]sdk.Record, 0, 500)
				for j := i; j < i+500 && j < b.N; j++ {
					batch = append(batch, sdk.Record{Data: tx(fmt.Sprintf("t-%08d", j), "c-1", int64(100+j), "EUR", "order"), Topic: "transactions.billed", Offset: int64(j)})
				}
				if _, err := p.Process(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "emails/s")
		})
	}
}
