// Command billing serves the billing plugin (package
// plugins/billing/biller): APPROVED transactions become BILLED in the
// database, idempotently, and their BILLED versions are emitted; refunds of
// billed transactions become credits for the next invoice.
//
//	plugins:
//	  billing:
//	    command: ../bin/plugins/billing
//	    config: {dsn: "${BILLING_DATABASE_DSN:-embedded}", data_dir: "${BILLING_DATA_DIR:-./data}"}
//	pipelines:
//	  - name: billing
//	    source: {topic: transactions.approved, schema: Transaction}
//	    stages:
//	      - {name: bill, plugin: billing, outputs: {billed: transactions}}
package main

import (
	"github.com/billing-engine/billing/engine/sdk"
	"github.com/billing-engine/billing/plugins/billing/biller"
)

func main() {
	sdk.Serve(biller.New, sdk.WithInfo(biller.Info))
}
