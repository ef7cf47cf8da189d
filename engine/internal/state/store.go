package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/vfs"
)

// ErrClosed is returned by a Store after Close.
var ErrClosed = errors.New("state: closed")

// Store is one instance's local state. It is safe for concurrent use.
type Store struct {
	db  *pebble.DB
	dir string
	log *slog.Logger
	fs  vfs.FS // a test's; nil: the OS's (memory for an empty dir)
	bg  backgroundErrors
	// yield runs between the writes of table files; see WithWriteYield.
	yield func()

	// flushEvery is how often the memtables are flushed when something
	// was written since the last flush; written says whether it was.
	flushEvery time.Duration
	written    atomic.Bool
	stop       chan struct{}
	flusher    sync.WaitGroup
}

// Option configures Open.
type Option func(*Store)

// WithLogger sets where the store reports what it cannot go on from (see
// Apply) and Pebble's background errors. Default: a text log on stderr.
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// DefaultFlushEvery is how often, at most, the store flushes what it was
// written to disk (a full memtable is flushed at once): the store keeps no
// log, so this bounds what a crash takes back and a restore replays.
const DefaultFlushEvery = 10 * time.Second

// WithFlushEvery sets how often the store flushes its memtables when
// something was written since the last flush (DefaultFlushEvery).
func WithFlushEvery(d time.Duration) Option { return func(s *Store) { s.flushEvery = d } }

// WithWriteYield sets a function that runs before every write to a table
// file (sstable) as Pebble flushes memtables and compacts files in the
// background, a few kilobytes apart. Those writes take no lock of the
// store's readers, so yield may hand the processor to a goroutine that
// reads from the store (the engine passes pollnet.Handoff, so that a query
// arriving during a long flush or compaction is answered at once). Default:
// none.
func WithWriteYield(yield func()) Option { return func(s *Store) { s.yield = yield } }

// Write is one change to a table: Value nil deletes Key.
type Write struct {
	Key, Value []byte
}

// Open opens (creating if needed) the store in dir. An empty dir keeps the
// store in memory (for tests). The caller MUST call Close.
func Open(dir string, options ...Option) (*Store, error) {
	s := &Store{dir: dir, log: slog.New(slog.NewTextHandler(os.Stderr, nil)), flushEvery: DefaultFlushEvery, stop: make(chan struct{})}
	for _, o := range options {
		o(s)
	}
	cache := pebble.NewCache(256 << 20)
	defer cache.Unref()
	// A table is written far more than it is read (a status table takes a
	// value per record and answers the odd query), so the store trades
	// read amplification for less rewriting, as Kafka Streams' universal
	// compaction does: 64 MiB memtables, and level 0 compacted once 8
	// files have piled up rather than 4 (writes stall at 32). Measured on
	// the status-table benchmark (1M records, 2-core VM, five runs each):
	// 9% more records/s, 7% less CPU per record.
	opts := &pebble.Options{Logger: quietLogger{s}, EventListener: s.events(), Cache: cache,
		MemTableSize: 64 << 20, L0CompactionThreshold: 8, L0StopWritesThreshold: 32}
	// No write-ahead log, as Kafka Streams runs RocksDB: the changelog (or
	// the source topic) is the log. A crash loses what the memtables held
	// since their last flush, values and checkpoints together (a batch's
	// checkpoint is in the batch), so the store is left as it was after
	// some earlier batch, and the restore replays the rest. The store
	// flushes at least every flushEvery while written to (as Kafka Streams
	// flushes its stores at commits), so that is seconds of records even
	// at a low rate; Close flushes.
	// Measured on the status-table benchmark (1M records, 2-core Xeon VM,
	// three alternating pairs): 3-5% more records/s.
	opts.DisableWAL = true
	// Bloom filters make a miss (a new key, the common case for a status
	// table) cost no block read.
	opts.Levels = make([]pebble.LevelOptions, 7)
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		opts.Levels[i].FilterType = pebble.TableFilter
	}
	switch {
	case s.fs != nil:
		opts.FS = s.fs
	case dir == "":
		opts.FS = vfs.NewMem()
	default:
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
		if s.yield != nil {
			// What Pebble does with no file system set: the OS's, with
			// its disk-health checks, here under the yields.
			opts.WithFSDefaults()
		}
	}
	if s.yield != nil {
		opts.FS = yieldingFS{FS: opts.FS, yield: s.yield}
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", dir, err)
	}
	s.db = db
	if s.flushEvery > 0 {
		s.flusher.Go(s.flushLoop)
	}
	return s, nil
}

// flushLoop flushes the memtables every flushEvery when something was
// written since the last time, until Close.
func (s *Store) flushLoop() {
	t := time.NewTicker(s.flushEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if !s.written.Swap(false) {
				continue
			}
			// An error is a background error too, reported (or fatal) there.
			if _, err := s.db.AsyncFlush(); err != nil {
				s.log.Error("state: flush", "dir", s.dir, "err", err)
			}
		}
	}
}

// Close flushes and closes the store.
func (s *Store) Close() error {
	close(s.stop)
	s.flusher.Wait()
	// Without a write-ahead log, what the memtables hold is written only
	// by a flush.
	if err := s.db.Flush(); err != nil {
		return errors.Join(fmt.Errorf("state: flush: %w", err), s.db.Close())
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("state: close: %w", err)
	}
	return nil
}

// dataKey is 'd' table 0x00 partition(4, big endian) key.
func dataKey(table string, partition int32, key []byte) []byte {
	return appendDataKey(make([]byte, 0, 1+len(table)+1+4+len(key)), table, partition, key)
}

// appendDataKey appends dataKey(table, partition, key) to b.
func appendDataKey(b []byte, table string, partition int32, key []byte) []byte {
	b = append(b, 'd')
	b = append(b, table...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(partition))
	return append(b, key...)
}

func checkpointKey(table string, partition int32) []byte {
	b := append([]byte{'c'}, table...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint32(b, uint32(partition))
}

// Get returns a copy of the value of key in table's partition, and whether
// it exists.
func (s *Store) Get(table string, partition int32, key []byte) ([]byte, bool, error) {
	v, closer, err := s.db.Get(dataKey(table, partition, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state: get %s/%d: %w", table, partition, err)
	}
	out := append([]byte(nil), v...)
	_ = closer.Close()
	return out, true, nil
}

// Position is where a table partition's replay resumes: the next offset
// to read of Topic, which is "" for the table's changelog and the source
// topic for a table restored from its source (Def.SourceChangelog). (A
// changelog position is stored as engines before source restores wrote
// it, so that such an engine can still read it.)
type Position struct {
	Topic  string
	Offset int64
}

// Checkpoint returns the position table's partition was last applied up
// to, and whether it has one.
func (s *Store) Checkpoint(table string, partition int32) (Position, bool, error) {
	v, closer, err := s.db.Get(checkpointKey(table, partition))
	if errors.Is(err, pebble.ErrNotFound) {
		return Position{}, false, nil
	}
	if err != nil {
		return Position{}, false, fmt.Errorf("state: checkpoint %s/%d: %w", table, partition, err)
	}
	defer closer.Close()
	if len(v) < 8 {
		return Position{}, false, fmt.Errorf("state: checkpoint %s/%d: corrupt (%d bytes)", table, partition, len(v))
	}
	return Position{Topic: string(v[8:]), Offset: int64(binary.BigEndian.Uint64(v))}, true, nil
}

// CheckpointTopics returns the topics other than the changelog ("") that
// table's partitions were last applied from.
func (s *Store) CheckpointTopics(table string) ([]string, error) {
	lower := append(append([]byte{'c'}, table...), 0)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return nil, fmt.Errorf("state: checkpoints of %s: %w", table, err)
	}
	defer it.Close()
	seen := map[string]bool{}
	var out []string
	for ok := it.First(); ok; ok = it.Next() {
		if v := it.Value(); len(v) > 8 && !seen[string(v[8:])] {
			seen[string(v[8:])] = true
			out = append(out, string(v[8:]))
		}
	}
	return out, it.Error()
}

// Clear deletes every key of table's partition and its checkpoint, so that
// a replay starts from nothing.
func (s *Store) Clear(table string, partition int32) error {
	lower := dataKey(table, partition, nil)
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(lower, prefixEnd(lower), nil); err != nil {
		return fmt.Errorf("state: clear %s/%d: %w", table, partition, err)
	}
	if err := b.Delete(checkpointKey(table, partition), nil); err != nil {
		return fmt.Errorf("state: clear %s/%d: %w", table, partition, err)
	}
	if err := s.commit(b); err != nil {
		return fmt.Errorf("state: clear %s/%d: %w", table, partition, err)
	}
	s.written.Store(true)
	return nil
}

// Apply writes writes and, when cp is set, the new checkpoint, as one
// atomic batch, in a memtable: the store keeps no log of its own (the
// changelog is the source of truth). After a crash it holds the batches up
// to its last memtable flush, each whole, with its own checkpoint, from
// which restore replays the rest.
//
// A store whose flushes fail (its disk is full or failing) can take no
// more writes in this process; it logs why, naming the directory, and
// ends the process with status 2 (see the package documentation).
func (s *Store) Apply(table string, partition int32, writes []Write, cp *Position) error {
	b := s.db.NewBatch()
	defer b.Close()
	var k []byte // the batch copies keys: one buffer serves them all
	for _, w := range writes {
		k = appendDataKey(k[:0], table, partition, w.Key)
		var err error
		if w.Value == nil {
			err = b.Delete(k, nil)
		} else {
			err = b.Set(k, w.Value, nil)
		}
		if err != nil {
			return fmt.Errorf("state: batch %s/%d: %w", table, partition, err)
		}
	}
	if cp != nil {
		v := append(binary.BigEndian.AppendUint64(nil, uint64(cp.Offset)), cp.Topic...)
		if err := b.Set(checkpointKey(table, partition), v, nil); err != nil {
			return fmt.Errorf("state: batch %s/%d: %w", table, partition, err)
		}
	}
	if err := s.commit(b); err != nil {
		return fmt.Errorf("state: apply %s/%d: %w", table, partition, err)
	}
	s.written.Store(true)
	return nil
}

// Entry is one key and value of a table.
type Entry struct {
	Key, Value []byte
}

// Scan returns up to limit entries of table's partition whose keys start
// with prefix and are greater than or equal to from (nil: the first), in
// key order.
func (s *Store) Scan(table string, partition int32, prefix, from []byte, limit int) ([]Entry, error) {
	lower := dataKey(table, partition, prefix)
	upper := prefixEnd(lower)
	start := lower
	if len(from) > 0 {
		if f := dataKey(table, partition, from); string(f) > string(lower) {
			start = f
		}
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("state: scan %s/%d: %w", table, partition, err)
	}
	defer it.Close()
	head := len(dataKey(table, partition, nil))
	var out []Entry
	for ok := it.SeekGE(start); ok && len(out) < limit; ok = it.Next() {
		out = append(out, Entry{Key: append([]byte(nil), it.Key()[head:]...), Value: append([]byte(nil), it.Value()...)})
	}
	return out, it.Error()
}

// Count returns the number of keys in table's partition.
func (s *Store) Count(table string, partition int32) (int, error) {
	lower := dataKey(table, partition, nil)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return 0, fmt.Errorf("state: count %s/%d: %w", table, partition, err)
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n, it.Error()
}

// DiskUsage estimates the bytes table takes on disk, over all partitions.
func (s *Store) DiskUsage(table string) (uint64, error) {
	lower := append(append([]byte{'d'}, table...), 0)
	n, err := s.db.EstimateDiskUsage(lower, prefixEnd(lower))
	if err != nil {
		return 0, fmt.Errorf("state: disk usage of %s: %w", table, err)
	}
	return n, nil
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

var _ io.Closer = (*Store)(nil)
