-- 0002: billing. Who billed each transaction and on which invoice it is;
-- credits for refunds of billed transactions; billing cycles; invoices and
-- their lines; the log of emails sent; outbox entries of more than one kind.
ALTER TABLE transactions ADD COLUMN billed_by TEXT;
ALTER TABLE transactions ADD COLUMN invoice_id TEXT;
CREATE INDEX IF NOT EXISTS transactions_uninvoiced ON transactions (client_id, currency, invoice_id, billed_at);

CREATE TABLE IF NOT EXISTS credits (
  transaction_id TEXT    NOT NULL PRIMARY KEY,
  client_id      TEXT    NOT NULL,
  currency       TEXT    NOT NULL CHECK (length(currency) = 3),
  amount_minor   INTEGER NOT NULL,
  description    TEXT    NOT NULL DEFAULT '',
  created_at     TEXT    NOT NULL,
  invoice_id     TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS credits_pending ON credits (client_id, currency, invoice_id);

CREATE TABLE IF NOT EXISTS billing_cycles (
  cycle_id      TEXT    NOT NULL PRIMARY KEY,
  interval_spec TEXT    NOT NULL,
  period_start  TEXT    NOT NULL,
  period_end    TEXT    NOT NULL,
  status        TEXT    NOT NULL CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED')),
  billed        INTEGER NOT NULL DEFAULT 0,
  invoices      INTEGER NOT NULL DEFAULT 0,
  error         TEXT    NOT NULL DEFAULT '',
  created_at    TEXT    NOT NULL,
  finished_at   TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS billing_cycles_created ON billing_cycles (created_at, cycle_id);

-- invoice_seq numbers invoices in the order they are written; the invoice
-- number shown to people is made from it.
CREATE TABLE IF NOT EXISTS invoices (
  invoice_seq      INTEGER PRIMARY KEY AUTOINCREMENT,
  invoice_id       TEXT    NOT NULL UNIQUE,
  client_id        TEXT    NOT NULL,
  billing_cycle_id TEXT    NOT NULL,
  currency         TEXT    NOT NULL,
  period_start     TEXT    NOT NULL,
  period_end       TEXT    NOT NULL,
  subtotal_minor   INTEGER NOT NULL,
  credits_minor    INTEGER NOT NULL,
  total_minor      INTEGER NOT NULL,
  created_at       TEXT    NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS invoices_client ON invoices (client_id, created_at, invoice_seq);
CREATE INDEX IF NOT EXISTS invoices_cycle ON invoices (billing_cycle_id);

-- A transaction is charged on one invoice at most, and credited on one at
-- most: (transaction_id, kind) is unique.
CREATE TABLE IF NOT EXISTS invoice_lines (
  invoice_id     TEXT    NOT NULL,
  line_no        INTEGER NOT NULL,
  transaction_id TEXT    NOT NULL,
  kind           TEXT    NOT NULL CHECK (kind IN ('CHARGE', 'CREDIT')),
  description    TEXT    NOT NULL DEFAULT '',
  amount_minor   INTEGER NOT NULL,
  created_at     TEXT    NOT NULL,
  PRIMARY KEY (invoice_id, line_no),
  UNIQUE (transaction_id, kind)
) STRICT;

-- One email per (ref_id, kind), ever: ref_id is a transaction or invoice id.
-- A row is SENDING while a sender (owner) holds the claim to send it, and
-- SENT once the server took it.
CREATE TABLE IF NOT EXISTS emails_sent (
  ref_id     TEXT NOT NULL,
  kind       TEXT NOT NULL,
  recipient  TEXT NOT NULL,
  message_id TEXT NOT NULL,
  sent_at    TEXT NOT NULL,
  state      TEXT NOT NULL DEFAULT 'SENT' CHECK (state IN ('SENDING', 'SENT')),
  owner      TEXT,
  claimed_at TEXT,
  PRIMARY KEY (ref_id, kind)
) STRICT;
CREATE INDEX IF NOT EXISTS emails_sent_kind ON emails_sent (kind, state);

-- kind says what the payload is: 'transaction' (to the transactions topic)
-- or 'invoice' (to the invoices topic).
ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'transaction';
