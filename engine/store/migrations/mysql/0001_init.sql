-- 0001: clients, transactions, the transactional outbox, idempotency keys
-- and leases. Money is BIGINT minor units plus a CHAR(3) ISO 4217 code;
-- timestamps are UTC with millisecond precision. Identifiers are ASCII and
-- compared byte for byte.
CREATE TABLE IF NOT EXISTS clients (
  client_id  VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  name       VARCHAR(200) NOT NULL,
  email      VARCHAR(254) NOT NULL,
  status     VARCHAR(16)  CHARACTER SET ascii NOT NULL,
  created_at DATETIME(3)  NOT NULL,
  updated_at DATETIME(3)  NOT NULL,
  PRIMARY KEY (client_id),
  KEY clients_created (created_at, client_id),
  KEY clients_status (status, created_at, client_id),
  CONSTRAINT clients_status_known CHECK (status IN ('ACTIVE', 'SUSPENDED', 'CLOSED'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS transactions (
  transaction_id   VARCHAR(64)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  client_id        VARCHAR(64)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  amount_minor     BIGINT        NOT NULL,
  currency         CHAR(3)       CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  status           VARCHAR(16)   CHARACTER SET ascii NOT NULL,
  description      VARCHAR(1000) NOT NULL DEFAULT '',
  created_at       DATETIME(3)   NOT NULL,
  updated_at       DATETIME(3)   NOT NULL,
  billed_at        DATETIME(3)   NULL,
  billing_cycle_id VARCHAR(64)   CHARACTER SET ascii COLLATE ascii_bin NULL,
  PRIMARY KEY (transaction_id),
  KEY transactions_created (created_at, transaction_id),
  KEY transactions_client (client_id, created_at, transaction_id),
  KEY transactions_status (status, created_at, transaction_id),
  CONSTRAINT transactions_status_known CHECK (status IN ('APPROVED', 'DECLINED', 'REFUNDED', 'BILLED'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS outbox (
  outbox_id    BIGINT      NOT NULL AUTO_INCREMENT,
  aggregate_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  payload      MEDIUMBLOB  NOT NULL,
  created_at   DATETIME(3) NOT NULL,
  sent_at      DATETIME(3) NULL,
  PRIMARY KEY (outbox_id),
  KEY outbox_pending (sent_at, outbox_id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS idempotency_keys (
  scope       VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  idem_key    VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  fingerprint CHAR(64)     CHARACTER SET ascii NOT NULL,
  status      SMALLINT     NOT NULL,
  body        MEDIUMBLOB   NOT NULL,
  created_at  DATETIME(3)  NOT NULL,
  PRIMARY KEY (scope, idem_key),
  KEY idempotency_created (created_at)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS leases (
  name       VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  owner      VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  expires_at DATETIME(3)  NOT NULL,
  PRIMARY KEY (name)
) ENGINE=InnoDB;
