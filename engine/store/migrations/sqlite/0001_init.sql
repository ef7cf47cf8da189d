-- 0001: clients, transactions, the transactional outbox, idempotency keys
-- and leases. Money is an INTEGER (64-bit) of minor units plus a 3-letter
-- ISO 4217 code; timestamps are TEXT in the fixed-width UTC form
-- 2006-01-02T15:04:05.000Z, so that they sort as they compare.
CREATE TABLE IF NOT EXISTS clients (
  client_id  TEXT NOT NULL PRIMARY KEY CHECK (length(client_id) BETWEEN 1 AND 64),
  name       TEXT NOT NULL CHECK (length(name) <= 200),
  email      TEXT NOT NULL CHECK (length(email) <= 254),
  status     TEXT NOT NULL CHECK (status IN ('ACTIVE', 'SUSPENDED', 'CLOSED')),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS clients_created ON clients (created_at, client_id);
CREATE INDEX IF NOT EXISTS clients_status ON clients (status, created_at, client_id);

CREATE TABLE IF NOT EXISTS transactions (
  transaction_id   TEXT    NOT NULL PRIMARY KEY CHECK (length(transaction_id) BETWEEN 1 AND 64),
  client_id        TEXT    NOT NULL CHECK (length(client_id) BETWEEN 1 AND 64),
  amount_minor     INTEGER NOT NULL,
  currency         TEXT    NOT NULL CHECK (length(currency) = 3),
  status           TEXT    NOT NULL CHECK (status IN ('APPROVED', 'DECLINED', 'REFUNDED', 'BILLED')),
  description      TEXT    NOT NULL DEFAULT '' CHECK (length(description) <= 1000),
  created_at       TEXT    NOT NULL,
  updated_at       TEXT    NOT NULL,
  billed_at        TEXT,
  billing_cycle_id TEXT CHECK (billing_cycle_id IS NULL OR length(billing_cycle_id) <= 64)
) STRICT;
CREATE INDEX IF NOT EXISTS transactions_created ON transactions (created_at, transaction_id);
CREATE INDEX IF NOT EXISTS transactions_client ON transactions (client_id, created_at, transaction_id);
CREATE INDEX IF NOT EXISTS transactions_status ON transactions (status, created_at, transaction_id);

-- AUTOINCREMENT: outbox ids are never reused, even after old rows are purged.
CREATE TABLE IF NOT EXISTS outbox (
  outbox_id    INTEGER PRIMARY KEY AUTOINCREMENT,
  aggregate_id TEXT NOT NULL,
  payload      BLOB NOT NULL,
  created_at   TEXT NOT NULL,
  sent_at      TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (outbox_id) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS idempotency_keys (
  scope       TEXT    NOT NULL,
  idem_key    TEXT    NOT NULL,
  fingerprint TEXT    NOT NULL,
  status      INTEGER NOT NULL,
  body        BLOB    NOT NULL,
  created_at  TEXT    NOT NULL,
  PRIMARY KEY (scope, idem_key)
) STRICT;
CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency_keys (created_at);

CREATE TABLE IF NOT EXISTS leases (
  name       TEXT NOT NULL PRIMARY KEY,
  owner      TEXT NOT NULL,
  expires_at TEXT NOT NULL
) STRICT;
