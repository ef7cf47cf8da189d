-- 0002: billing. Who billed each transaction and on which invoice it is;
-- credits for refunds of billed transactions; billing cycles; invoices and
-- their lines; the log of emails sent; outbox entries of more than one kind.
ALTER TABLE transactions
  ADD COLUMN billed_by  VARCHAR(320) CHARACTER SET ascii COLLATE ascii_bin NULL,
  ADD COLUMN invoice_id VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NULL,
  ADD KEY transactions_uninvoiced (client_id, currency, invoice_id, billed_at);

CREATE TABLE IF NOT EXISTS credits (
  transaction_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  client_id      VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  currency       CHAR(3)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  amount_minor   BIGINT      NOT NULL,
  description    VARCHAR(1000) NOT NULL DEFAULT '',
  created_at     DATETIME(3) NOT NULL,
  invoice_id     VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
  PRIMARY KEY (transaction_id),
  KEY credits_pending (client_id, currency, invoice_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS billing_cycles (
  cycle_id      VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  interval_spec VARCHAR(64)  NOT NULL,
  period_start  DATETIME(3)  NOT NULL,
  period_end    DATETIME(3)  NOT NULL,
  status        VARCHAR(16)  CHARACTER SET ascii NOT NULL,
  billed        BIGINT       NOT NULL DEFAULT 0,
  invoices      BIGINT       NOT NULL DEFAULT 0,
  error         VARCHAR(1000) NOT NULL DEFAULT '',
  created_at    DATETIME(3)  NOT NULL,
  finished_at   DATETIME(3)  NULL,
  PRIMARY KEY (cycle_id),
  KEY billing_cycles_created (created_at, cycle_id),
  CONSTRAINT billing_cycles_status_known CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- invoice_seq numbers invoices in the order they are written; the invoice
-- number shown to people is made from it.
CREATE TABLE IF NOT EXISTS invoices (
  invoice_seq      BIGINT      NOT NULL AUTO_INCREMENT,
  invoice_id       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  client_id        VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  billing_cycle_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  currency         CHAR(3)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  period_start     DATETIME(3) NOT NULL,
  period_end       DATETIME(3) NOT NULL,
  subtotal_minor   BIGINT      NOT NULL,
  credits_minor    BIGINT      NOT NULL,
  total_minor      BIGINT      NOT NULL,
  created_at       DATETIME(3) NOT NULL,
  PRIMARY KEY (invoice_seq),
  UNIQUE KEY invoices_id (invoice_id),
  KEY invoices_client (client_id, created_at, invoice_seq),
  KEY invoices_cycle (billing_cycle_id)
) ENGINE=InnoDB;

-- A transaction is charged on one invoice at most, and credited on one at
-- most: (transaction_id, kind) is unique.
CREATE TABLE IF NOT EXISTS invoice_lines (
  invoice_id     VARCHAR(64)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  line_no        INT           NOT NULL,
  transaction_id VARCHAR(64)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  kind           VARCHAR(8)    CHARACTER SET ascii NOT NULL,
  description    VARCHAR(1000) NOT NULL DEFAULT '',
  amount_minor   BIGINT        NOT NULL,
  created_at     DATETIME(3)   NOT NULL,
  PRIMARY KEY (invoice_id, line_no),
  UNIQUE KEY invoice_lines_once (transaction_id, kind),
  CONSTRAINT invoice_lines_kind_known CHECK (kind IN ('CHARGE', 'CREDIT'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One email per (ref_id, kind), ever: ref_id is a transaction or invoice id.
-- A row is SENDING while a sender (owner) holds the claim to send it, and
-- SENT once the server took it.
CREATE TABLE IF NOT EXISTS emails_sent (
  ref_id     VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  kind       VARCHAR(16)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  recipient  VARCHAR(254) NOT NULL,
  message_id VARCHAR(255) NOT NULL,
  sent_at    DATETIME(3)  NOT NULL,
  state      VARCHAR(8)   CHARACTER SET ascii NOT NULL DEFAULT 'SENT',
  owner      VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NULL,
  claimed_at DATETIME(3)  NULL,
  PRIMARY KEY (ref_id, kind),
  KEY emails_sent_kind (kind, state),
  CONSTRAINT emails_sent_state_known CHECK (state IN ('SENDING', 'SENT'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- kind says what the payload is: 'transaction' (to the transactions topic)
-- or 'invoice' (to the invoices topic).
ALTER TABLE outbox ADD COLUMN kind VARCHAR(16) CHARACTER SET ascii NOT NULL DEFAULT 'transaction';
