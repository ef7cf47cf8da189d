// Package mailer is the email plugin's logic: it sends one email per
// billed transaction (records of billing.Transaction, from the topic
// transactions.billed) or per invoice (records of billing.Invoice, from
// the topic invoices), to the client's address in the store, over SMTP or
// into an outbox folder of .eml files. The binary in the parent folder,
// plugins/email, serves it as an out-of-process plugin.
//
// # Settings
//
// The plugin's `config:` in the pipeline file:
//
//	dsn: embedded              # the store (store.Open); default "embedded"
//	data_dir: ./data           # the embedded store's directory; default "./data"
//	smtp_addr: mail:587        # host:port; empty or absent: write .eml files instead
//	outbox_dir: ./data/outbox  # where .eml files go; default <data_dir>/outbox
//	from: Billing <billing@example.com>   # default "billing@localhost"
//	smtp_user: billing         # AUTH PLAIN when the server offers AUTH
//	smtp_password: secret
//	smtp_ca_file: ca.pem       # PEM certificates trusted for STARTTLS besides the system's
//	smtp_insecure_skip_verify: false      # true accepts any STARTTLS certificate (test servers)
//	templates: ./mail          # files here replace the embedded templates of the same name
//	timeout: 10s               # bounds each SMTP dial and each command (a duration, or seconds)
//	claim_lease: 2m            # how long a claim on an email holds against other senders
//
// An unknown setting is an error naming it. The pipeline's source schema
// says what the records are: billing.Transaction (email kind "billed";
// only records with status BILLED get one) or billing.Invoice (kind
// "invoice").
//
// # Exactly one email per transaction or invoice
//
// The store's emails-sent log holds one row per (ref id, kind). A batch
// first claims its emails there (store.ClaimEmails): those sent already
// are skipped, and those another sender holds a live claim on make the
// batch wait (unavailable) after the rest is sent, so that two senders of
// one batch (a plugin finishing it after its engine died, and the
// restarted engine's plugin retrying it) never send one email both. What
// was sent is recorded every 25 messages and at the end, even when the
// caller has gone; claims on emails not sent are released. What SMTP
// leaves no way around: when the process dies after the server accepted a
// message and before it is recorded, the message is sent again once its
// claim expires (claim_lease, default 2m), with the same Message-ID
// (<kind.ref_id@domain of from>), so a mail log or a client that
// deduplicates recognises it. The outbox is exactly once: a message's file
// name depends only on its kind and ref id, and a file is written whole or
// not at all.
//
// # Failures
//
//   - A record that does not decode, names a client the store does not
//     have, has a client with an unusable address, or whose message the
//     server refuses for good (a 5xx reply to RCPT TO or DATA) goes to the
//     dead-letter queue with the reason; the others go on.
//   - The store or the mail server unavailable (a failed connection, a
//     connection broken mid-batch, a 4xx reply), or a full disk under the
//     outbox: what was sent is recorded (when the store allows), and the
//     batch fails with an error wrapping sdk.ErrUnavailable, which the
//     engine retries with backoff for as long as it takes.
//   - A permanent failure of the session (AUTH or MAIL FROM refused with
//     5xx, a certificate that does not verify) is never the records'
//     fault: it is logged as an error and the batch waits as unavailable
//     too, until the settings or the server are fixed.
//
// # Templates
//
// Each kind has three templates, embedded in the binary:
// <kind>.subject.tmpl and <kind>.txt.tmpl (text/template) and
// <kind>.html.tmpl (html/template), executed with BilledEmail or
// InvoiceEmail. The message is multipart/alternative with both parts in
// UTF-8, quoted-printable. The subject is cut to 200 characters, its
// control characters and line breaks become spaces, and it is
// RFC 2047-encoded when not ASCII; the To name is cleaned the same way,
// so no record can add a header.
package mailer

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/billing-engine/billing/engine/sdk"
	"github.com/billing-engine/billing/engine/store"
)

// Name is the plugin's name. The plugin has no outputs: a record that
// got its email is done.
const Name = "email"

// ErrConfig reports a bad setting; the error names it.
var ErrConfig = errors.New("email: config")

// recordEvery is how many sent messages are recorded at a time within a
// batch, so that a crash leaves few sent and unrecorded.
const recordEvery = 25

// recordTimeout bounds the recording of sent messages, which goes on when
// the call that sent them was cancelled.
const recordTimeout = 30 * time.Second

// Mailer is the Processor. It is safe for concurrent use. Close it when
// done (the engine does).
type Mailer struct {
	kind  string
	parse func(map[string]any) (*request, error)
	db    *store.DB
	tmpl  templateSet
	send  sender
	from  *mail.Address
	// domain is the from address's, for Message-IDs.
	domain string
	log    *slog.Logger
	now    func() time.Time
	// owner names this Mailer in its claims on emails; lease is how long
	// a claim holds against other senders.
	owner string
	lease time.Duration

	// unrecorded are emails this Mailer sent but could not record (the
	// database went away at that moment). The next batch records them
	// before it claims anything, so a retry does not send them again.
	mu         sync.Mutex
	unrecorded []store.EmailSent
}

// New builds a Mailer from cfg: it checks every setting, loads the
// templates, opens the store and makes the outbox folder or prepares the
// SMTP connection (the server is first dialled by the first batch). It is
// the plugin's sdk.Factory; errors name the setting and wrap ErrConfig,
// or say that the store could not be opened.
func New(ctx context.Context, cfg sdk.Config) (sdk.Processor, error) {
	s, err := parseSettings(cfg.Settings)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	m := &Mailer{from: s.from, domain: s.domain, log: cfg.Log(), now: time.Now, owner: newOwner(), lease: s.lease}
	switch cfg.Schema {
	case "billing.Transaction", "Transaction":
		m.kind, m.parse = KindBilled, billedRequest
	case "billing.Invoice", "Invoice":
		m.kind, m.parse = KindInvoice, invoiceRequest
	default:
		errs = append(errs, fmt.Errorf("%w: source schema %q: want billing.Transaction (from transactions.billed) or billing.Invoice (from invoices)", ErrConfig, cfg.Schema))
	}
	if m.tmpl, err = loadTemplates(s.templates); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if s.smtpAddr != "" {
		m.send = newSMTPSender(s, m.log)
	} else if m.send, err = newOutbox(s.outboxDir); err != nil {
		return nil, err
	}
	if m.db, err = store.Open(ctx, s.dsn, store.DataDir(s.dataDir)); err != nil {
		return nil, fmt.Errorf("email: open store: %w", err)
	}
	m.log.Info("email configured", "kind", m.kind, "to", m.send.String(), "store", m.db.String(), "from", s.from.String())
	return m, nil
}

// Close closes the store and the idle SMTP connections.
func (m *Mailer) Close() error {
	return errors.Join(m.send.close(), m.db.Close())
}

// Process sends the emails the batch asks for. Every record's Result has
// no emits; one that cannot be emailed has a DLQ reason. See the package
// documentation for what fails the batch.
func (m *Mailer) Process(ctx context.Context, batch []sdk.Record) ([]sdk.Result, error) {
	results := make([]sdk.Result, len(batch))
	reqs := m.requests(batch, results)
	if len(reqs) == 0 {
		return results, nil
	}
	if err := m.recordLeftovers(ctx); err != nil {
		return nil, err
	}
	ids := make([]string, len(reqs))
	for i, r := range reqs {
		ids[i] = r.refID
	}
	claims, err := m.db.ClaimEmails(ctx, m.kind, ids, m.owner, m.lease)
	if err != nil {
		return nil, m.storeErr(ctx, err)
	}
	if n := len(claims.TakenOver); n > 0 {
		m.log.Warn("taking over emails whose sender stopped before recording them: any it had sent goes again, with the same Message-ID",
			"kind", m.kind, "count", n)
	}
	var todo []*request
	var claimed []string
	for _, r := range reqs {
		if claims.Claimed[r.refID] {
			todo = append(todo, r)
			claimed = append(claimed, r.refID)
		}
	}
	sent := map[string]bool{}
	defer func() { m.release(ctx, claimed, sent) }()
	msgs, err := m.messages(ctx, todo, results)
	if err != nil {
		return nil, err
	}
	n, err := m.deliver(ctx, msgs, results, sent)
	m.log.Debug("email batch", "records", len(batch), "sent", n, "already_sent", len(claims.Sent), "busy", len(claims.Busy))
	if err != nil {
		return nil, err
	}
	if len(claims.Busy) > 0 {
		// Another sender holds these: the batch waits until it has
		// recorded them, released them, or its claim has expired.
		return nil, fmt.Errorf("email: %d emails are being sent by another sender: %w", len(claims.Busy),
			sdk.Unavailable(errors.New("claimed elsewhere")))
	}
	return results, nil
}

// release gives up the claims of the emails claimed and not sent (refused,
// not rendered, or not reached), so that a retry or another sender may
// take them at once; with a context of its own, as the caller may have
// gone.
func (m *Mailer) release(ctx context.Context, claimed []string, sent map[string]bool) {
	var left []string
	for _, id := range claimed {
		if !sent[id] {
			left = append(left, id)
		}
	}
	if len(left) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := m.db.ReleaseEmails(rctx, m.kind, left, m.owner); err != nil {
		m.log.Warn("email claims not released: they wait until they expire", "kind", m.kind, "count", len(left), "lease", m.lease, "err", err)
	}
}

// requests reads the records, setting the Result of those that get no
// email: a DLQ reason for a record that cannot be read, nothing for one
// that is not to be emailed or that repeats an earlier record's ref id.
func (m *Mailer) requests(batch []sdk.Record, results []sdk.Result) []*request {
	var reqs []*request
	seen := make(map[string]bool, len(batch))
	for i, rec := range batch {
		if rec.Data == nil {
			results[i].DLQ = "email: record not decoded"
			continue
		}
		r, err := m.parse(rec.Data)
		if err != nil {
			results[i].DLQ = "email: " + err.Error()
			continue
		}
		if r == nil || seen[r.refID] {
			continue
		}
		check := store.EmailSent{RefID: r.refID, Kind: m.kind}
		if err := check.Check(); err != nil {
			results[i].DLQ = "email: " + err.Error()
			continue
		}
		seen[r.refID] = true
		r.index = i
		reqs = append(reqs, r)
	}
	return reqs
}

// messages looks up the clients and renders the messages of reqs. A
// client that does not exist or has no usable address, or a template that
// fails, sends its records to the DLQ; a store error fails the batch.
func (m *Mailer) messages(ctx context.Context, reqs []*request, results []sdk.Result) ([]*message, error) {
	ids := make([]string, 0, len(reqs))
	seen := map[string]bool{}
	for _, r := range reqs {
		if !seen[r.clientID] {
			seen[r.clientID] = true
			ids = append(ids, r.clientID)
		}
	}
	clients, err := m.db.GetClients(ctx, ids)
	if err != nil {
		return nil, m.storeErr(ctx, err)
	}
	var msgs []*message
	for _, r := range reqs {
		c, ok := clients[r.clientID]
		if !ok {
			results[r.index].DLQ = fmt.Sprintf("email: client %s not found", r.clientID)
			continue
		}
		msg, err := m.render(r, &c)
		if err != nil {
			results[r.index].DLQ = err.Error()
			continue
		}
		msgs = append(msgs, msg)
	}
	return msgs, nil
}

// render makes the message of r to client c.
func (m *Mailer) render(r *request, c *store.Client) (*message, error) {
	to, err := mail.ParseAddress(c.Email)
	if err != nil || strings.ContainsFunc(to.Address, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("email: client %s: address %q is not usable", c.ID, c.Email)
	}
	r.setClient(Recipient{ClientID: c.ID, Name: c.Name, Email: to.Address})
	subject, text, html, err := m.tmpl[m.kind].execute(r.data())
	if err != nil {
		return nil, fmt.Errorf("email: template: %w", err)
	}
	id := messageID(m.kind, r.refID, m.domain)
	data, err := render(*m.from, mail.Address{Name: c.Name, Address: to.Address}, id, subject, text, html, m.now())
	if err != nil {
		return nil, err
	}
	msg := &message{index: r.index, kind: m.kind, refID: r.refID, from: m.from.Address, to: to.Address, id: id, data: data}
	if err := (&store.EmailSent{RefID: r.refID, Kind: m.kind, Recipient: msg.to, MessageID: id}).Check(); err != nil {
		return nil, fmt.Errorf("email: %w", err)
	}
	return msg, nil
}

// deliver sends msgs, records what was sent every recordEvery messages
// and at the end, and sets the Results of refused messages. It returns
// how many were sent.
func (m *Mailer) deliver(ctx context.Context, msgs []*message, results []sdk.Result, sentIDs map[string]bool) (int, error) {
	var pending []store.EmailSent
	sent := 0
	// Messages the server accepted are recorded even when the caller has
	// gone (the engine died, the call timed out): with a context of
	// their own, since ctx may be what ended.
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	record := func() error {
		if len(pending) == 0 {
			return nil
		}
		if err := m.db.MarkEmailsSent(recordCtx, pending); err != nil {
			return m.storeErr(recordCtx, err)
		}
		pending = pending[:0]
		return nil
	}
	err := m.send.send(ctx, msgs, func(i int, refused string) error {
		msg := msgs[i]
		if refused != "" {
			results[msg.index].DLQ = refused
			m.log.Warn("email refused", "kind", msg.kind, "ref_id", msg.refID, "to", msg.to, "reason", refused)
			return nil
		}
		sent++
		sentIDs[msg.refID] = true
		pending = append(pending, store.EmailSent{RefID: msg.refID, Kind: msg.kind, Recipient: msg.to, MessageID: msg.id, SentAt: m.now()})
		if len(pending) >= recordEvery {
			return record()
		}
		return nil
	})
	if err != nil {
		// Record what went before the failure.
		if rerr := m.recordAfterFailure(recordCtx, pending); rerr != nil {
			m.keepUnrecorded(pending, rerr)
		}
		m.log.Warn("email batch failed", "kind", m.kind, "sent", sent, "err", err)
		return sent, err
	}
	if err := record(); err != nil {
		m.keepUnrecorded(pending, err)
		return sent, err
	}
	if sent > 0 {
		m.log.Debug("emails sent", "kind", m.kind, "count", sent, "to", m.send.String())
	}
	return sent, nil
}

// keepUnrecorded keeps sent emails whose recording failed, for the next
// batch to record first.
func (m *Mailer) keepUnrecorded(pending []store.EmailSent, err error) {
	m.log.Warn("emails sent but not recorded: the next batch records them before sending anything", "kind", m.kind, "count", len(pending), "err", err)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unrecorded = append(m.unrecorded, pending...)
}

// recordLeftovers records the emails keepUnrecorded kept. While it cannot,
// the batch fails as unavailable and sends nothing.
func (m *Mailer) recordLeftovers(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.unrecorded) == 0 {
		return nil
	}
	if err := m.db.MarkEmailsSent(ctx, m.unrecorded); err != nil {
		return m.storeErr(ctx, fmt.Errorf("recording %d emails sent earlier: %w", len(m.unrecorded), err))
	}
	m.log.Info("emails sent earlier recorded", "kind", m.kind, "count", len(m.unrecorded))
	m.unrecorded = nil
	return nil
}

func (m *Mailer) recordAfterFailure(ctx context.Context, pending []store.EmailSent) error {
	if len(pending) == 0 {
		return nil
	}
	return m.db.MarkEmailsSent(ctx, pending)
}

// storeErr wraps a store failure: as unavailable, so that the engine
// retries the batch until the database is back, unless ctx ended.
func (m *Mailer) storeErr(ctx context.Context, err error) error {
	err = fmt.Errorf("email: store: %w", err)
	if ctx.Err() != nil {
		return err
	}
	return sdk.Unavailable(err)
}

// newOwner names a Mailer in its claims: host, process and a random part.
func newOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	o := fmt.Sprintf("%s/%d/%x", host, os.Getpid(), b)
	if len(o) > 64 {
		o = o[len(o)-64:]
	}
	return o
}
