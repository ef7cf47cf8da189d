package avro_test

import (
	"fmt"
	"time"

	"github.com/billing-engine/billing/engine/avro"
)

func Example() {
	reg, err := avro.LoadDir("../../schemas")
	if err != nil {
		fmt.Println(err)
		return
	}
	tx, err := reg.Schema("Transaction")
	if err != nil {
		fmt.Println(err)
		return
	}
	at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	msg, err := tx.Encode(map[string]any{
		"transaction_id": "tx-1",
		"client_id":      "client-42",
		"amount_minor":   int64(1999), // EUR 19.99
		"currency":       "EUR",
		"status":         "APPROVED",
		"created_at":     at,
		"updated_at":     at,
		// description, billed_at and billing_cycle_id take their defaults.
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("header % x\n", msg[:2])

	rec, err := reg.Decode(tx, msg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rec["amount_minor"], rec["currency"], rec["status"])
	fmt.Println(rec["created_at"], rec["billed_at"] == nil)
	// Output:
	// header c3 01
	// 1999 EUR APPROVED
	// 2024-03-01 12:00:00 +0000 UTC true
}

func ExampleRegistry_Decode_olderWriter() {
	reg, _ := avro.LoadDir("../../schemas")
	current, _ := reg.Schema("billing.Transaction")
	v1 := reg.Versions("billing.Transaction")[1] // schemas/versions/transaction.v1.avsc

	at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	msg, _ := v1.Encode(map[string]any{
		"transaction_id": "tx-1", "client_id": "client-42", "amount_minor": int64(500),
		"currency": "JPY", "status": "APPROVED", "created_at": at, "updated_at": at,
	})
	rec, err := reg.Decode(current, msg)
	fmt.Printf("%q %v %v %v\n", rec["description"], rec["billed_at"], rec["billing_cycle_id"], err)
	// Output: "" <nil> <nil> <nil>
}
