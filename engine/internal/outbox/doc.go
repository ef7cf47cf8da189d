// Package outbox publishes the store's outbox to Kafka: the relay half of
// the transactional outbox.
//
// The store writes each new or changed transaction and an outbox entry in
// one database transaction. The Relay reads pending entries in id order,
// publishes them to the transactions topic (Avro single-object encoding,
// key = transaction_id, partitioned like every other producer of the
// topic) and marks them sent. Entries of kind invoice, written with each
// invoice of a billing cycle, go to the invoices topic (billing.Invoice,
// key = invoice_id) in the same Kafka transactions.
//
// # Exactly once, for read_committed readers
//
// A crash between the database commit and the publish only delays the
// entry: it is still pending when the relay starts again. A crash between
// the publish and the mark must not publish it twice, so the relay
// publishes each batch in a Kafka transaction that also writes a progress
// record (the ids of the batch) to the compacted, single-partition topic
// <app>-outbox-progress. At start the relay fences any earlier holder of
// its transactional id (which aborts a batch that was in flight), reads
// the last committed progress record and marks those ids sent before it
// publishes anything. The batch in flight is recorded by id, not as "every
// id up to N", because a database may commit outbox ids out of order.
//
// To read the progress record without waiting on a timeout, the relay
// first commits a start marker (key "relay-start", a random nonce) to the
// progress topic, then reads the topic read_committed until it meets its
// own marker: every progress record committed before is then known.
//
// # One relay at a time
//
// Several engine processes may share one database. Only the holder of a
// database lease publishes; the others wait. The Kafka transactional id
// fences a relay that lost its lease while publishing.
package outbox
