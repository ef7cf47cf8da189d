// Package stream is the engine's Kafka runtime, built on sarama: one consumer
// group per pipeline, one goroutine per assigned partition, records taken in
// batches through the pipeline's stages, and each batch's sink records, DLQ
// records and consumed offsets committed in one Kafka transaction.
//
// Exactly-once: every partition has its own transactional producer whose
// transactional ID is derived from the application, pipeline, topic and
// partition. A new owner of a partition (a restarted process, or another
// instance after a rebalance) initialises the same transactional ID, which
// aborts whatever the previous owner left open and fences it off; the
// consumer group's offsets are read with require-stable, so the new owner
// starts exactly after the last committed batch. Readers of the sinks use
// read_committed.
package stream
