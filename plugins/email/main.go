// Command email serves the email plugin (package plugins/email/mailer) as
// an out-of-process plugin: one email per billed transaction or invoice,
// over SMTP or into an outbox folder, never two for the same one.
//
//	plugins:
//	  email:
//	    command: ../bin/plugins/email
//	    config:
//	      dsn: ${BILLING_DATABASE_DSN:-embedded}
//	      data_dir: ${BILLING_DATA_DIR:-./data}
//	      smtp_addr: ${BILLING_SMTP_ADDR:-}
//	      from: ${BILLING_EMAIL_FROM:-billing@localhost}
//
// The settings are described in package mailer.
package main

import (
	"github.com/billing-engine/billing/engine/sdk"
	"github.com/billing-engine/billing/plugins/email/mailer"
)

func main() {
	sdk.Serve(mailer.New, sdk.WithInfo(sdk.Info{Name: mailer.Name}))
}
