// Package state keeps the engine's tables: local Pebble storage per
// instance, one key space per table and partition, each partition with a
// checkpoint (the next changelog offset to read). The changelog topic is the
// source of truth; the local store is a cache of it that survives restarts.
// A latest table may instead be restored from its pipeline's source topic
// (Def.SourceChangelog); its checkpoint is then a source offset.
//
// Writes reach the store only after the Kafka transaction that carried their
// changelog records committed, so a crash leaves the store at or behind the
// changelog, never ahead; restore replays the changelog from the checkpoint.
// Changelog records hold whole values, so replaying one twice is harmless.
// The store keeps no write-ahead log of its own (the changelog is one): a
// crash takes it back to its last memtable flush, checkpoints included. It
// flushes at least every few seconds while written to (WithFlushEvery), so
// a restore after a crash replays seconds of records, not hours.
//
// A disk that is full or failing under the store is fatal: a flush that
// fails for want of space or with an I/O error stalls every write while
// Pebble retries it without pause. The store then logs an error naming its
// directory and the cause, and ends the process with status 2.
// Since writes follow their commit in Kafka, nothing committed is lost: a
// restart once the disk has room restores the tables from the changelogs.
package state
