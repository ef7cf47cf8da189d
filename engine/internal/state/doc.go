// Package state keeps the engine's tables: local Pebble storage per
// instance, one key space per table and partition, each partition with a
// checkpoint (the next changelog offset to read). The changelog topic is the
// source of truth; the local store is a cache of it that survives restarts.
//
// Writes reach the store only after the Kafka transaction that carried their
// changelog records committed, so a crash leaves the store at or behind the
// changelog, never ahead; restore replays the changelog from the checkpoint.
// Changelog records hold whole values, so replaying one twice is harmless.
package state
