// Package stream is the engine's Kafka runtime, built on sarama: one consumer
// group per pipeline, one goroutine per assigned partition, records taken in
// batches through the pipeline's stages, and each batch's sink records, DLQ
// records and consumed offsets committed in a Kafka transaction.
//
// Exactly-once (as Kafka Streams' exactly_once_v2, KIP-447): each pipeline
// of a process has a few transactional producers (four), and a transaction
// carries the batches of the partitions that are ready when it begins, with
// their consumed offsets. The offsets are committed with the consumer group's
// generation, so an instance that lost a partition in a rebalance (a
// zombie) cannot commit it: the broker refuses the offsets and its
// transaction aborts. The transactional ids name the instance
// (RunnerConfig.InstanceID): a process restarted as the same instance
// fences its predecessor, and the broker aborts what that one left open
// when the new producers start; an instance that does not come back leaves
// it to the broker's transaction timeout. The consumer group's
// offsets are read with require-stable, so the new owner of a partition
// starts exactly after the last committed batch. Readers of the sinks use
// read_committed.
package stream
