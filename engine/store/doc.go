// Package store keeps clients and transactions in SQL: MySQL (or MariaDB)
// in production, SQLite in a file under the data directory as the embedded
// default. One DB type serves both dialects; the same contract tests run on
// both.
//
// # What it holds
//
//   - clients and transactions, with create, get, list (filters and keyset
//     paging in (created_at, id) order), update and delete;
//   - a transactional outbox: creating or updating a transaction through
//     the store writes the row and an outbox entry in one database
//     transaction; a relay (package outbox) publishes the entries to Kafka;
//   - idempotency keys: the first answer to a POST, replayed for a repeated
//     key;
//   - leases, so that one process at a time runs a singleton job such as
//     the outbox relay;
//   - billing: Bill moves APPROVED transactions to BILLED in batches,
//     idempotently by reference (the billing plugin and billing cycles
//     both use it), and Credit records a credit for a refund of a billed
//     transaction;
//   - the log of emails sent (EmailsSent, MarkEmailsSent): one email per
//     transaction or invoice and kind, ever;
//   - billing cycles (CreateCycle, ApprovedBetween, FinishCycle) and the
//     invoices they write (WriteInvoices): one per client and currency
//     with every billed charge and pending credit up to the cycle's end
//     that no invoice has yet, each written with an outbox entry of kind
//     invoice, so that the relay publishes it to the invoices topic.
//
// Every transaction that arrives on the transactions topic is mirrored here
// by UpsertTransactions (the newer updated_at wins; billed_at, once set,
// stays), so the API and the stream agree.
//
// The package is public so that out-of-process plugins (plugins/billing,
// plugins/email) can open the same database as the engine.
//
// # Transaction status
//
// A transaction's status follows this state machine (CanTransition):
//
//	APPROVED -> BILLED     billed on a billing cycle
//	APPROVED -> DECLINED   declined after approval (e.g. a failed capture)
//	APPROVED -> REFUNDED   refunded before it was billed
//	BILLED   -> REFUNDED   refunded after it was billed
//
// DECLINED and REFUNDED are final. Setting the status a transaction already
// has is allowed and changes nothing. UpsertTransactions does not apply the
// state machine: the stream is the record of what happened.
//
// # Schema
//
// Versioned migrations are embedded in the binary, one file per version per
// dialect (migrations/<dialect>/NNNN_name.sql), and applied by Open under a
// lock, so several processes may start at once. Money is BIGINT minor units
// plus a 3-letter currency code; timestamps are UTC with millisecond
// precision, as on the Avro records. SQL parameters are always bound.
//
// # Concurrency
//
// A DB is safe for concurrent use. SQLite runs in WAL mode with a busy
// timeout, so several processes may open the same file; within a process,
// writes go through one connection and reads through a pool. MySQL
// connections run READ COMMITTED for their whole session, and write
// transactions lock the rows they change in id order, so that batches of
// several partitions and billing cycles never deadlock each other.
//
// # Batches
//
// The batch calls (Bill, Credit, UpsertTransactions, ClaimEmails,
// MarkEmailsSent, ReleaseEmails) take one statement per 500 rows, so a
// batch of the engine's takes one of each, and on MySQL the statements of
// the first sizes used stay prepared on each connection. A call that is a
// single statement (a MarkEmailsSent of up to 500 entries) runs without a
// transaction around it: it is atomic and commits on its own.
package store
