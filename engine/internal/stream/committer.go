package stream

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

// committer commits the batches of every partition a Runner owns through a
// few transactional producers: whatever batches are ready when a producer
// begins a transaction go into it together (their sink, changelog and DLQ
// records, and their consumed offsets), as Kafka Streams does under
// exactly_once_v2 (KIP-447). While the producers' transactions commit, the
// partitions' next batches queue for the next one free, so under load a
// transaction carries the batches of several partitions, and at a low rate
// a batch waits for no other. A partition has one batch in flight at a
// time, so its batches commit in order whichever producer takes them.
//
// A zombie (an instance that lost its partitions in a rebalance it has not
// seen yet) is fenced by the consumer group: its offsets are sent with its
// group generation, which the broker refuses once the group has moved on,
// and the transaction with them aborts.
type committer struct {
	brokers []string
	cfg     *sarama.Config
	group   string
	log     *slog.Logger

	reqs    chan *pendingCommit
	workers []*txnWorker
	wg      sync.WaitGroup

	// txns and batches count committed transactions and the batches they
	// carried (logged when the committer stops).
	txns, batches atomic.Int64
}

// txnWorker is one of a committer's producers, with the goroutine that
// alone uses it.
//
// The producer is sarama's AsyncProducer used without its successes: a
// transaction's commit waits for every message in flight anyway, and a
// message that failed puts the transaction in an error state that makes
// the commit fail. A SyncProducer would pass each message through four
// more channel operations and a pool to report a success nobody needs
// (with the changelog records of a status table, that is a tenth of the
// engine's CPU).
type txnWorker struct {
	c     *committer
	txnID string
	prod  sarama.AsyncProducer

	// errs are the producer's failed messages, gathered as they come by
	// the goroutine draining its Errors channel (a full channel would
	// stall the producer), for the failure message of their transaction.
	mu     sync.Mutex
	errs   []*sarama.ProducerError
	errsWG sync.WaitGroup
}

// txnProducers is how many transactions of a pipeline may be in flight at
// once. One would serialize every commit of the process's partitions
// behind one producer's round trips to the transaction coordinator; a few
// keep the broker busy while each still carries several partitions' batches.
const txnProducers = 4

// pendingCommit is one partition's batch waiting for a transaction.
type pendingCommit struct {
	sess sarama.ConsumerGroupSession
	msgs []*sarama.ProducerMessage
	// offset, when set, is the consumed offset to commit: the one after
	// the batch's last record.
	offset *sarama.ConsumerMessage
	result chan error
}

// maxTxnRecords bounds the records of one transaction, so one holds a few
// partitions' full batches and its send stays well under the request
// limits.
const maxTxnRecords = 20_000

// newCommitter starts a committer with producers transactional producers
// (txnProducers in a Runner), with transactional ids
// <group>-<instance>-<n>; an empty instance is a random one. The producers
// start at once: one that takes over the id of a crashed predecessor
// (same instance) makes the broker abort what that one left open, which
// read_committed consumers of its partitions would otherwise wait on until
// the transaction timeout (see SaramaConfig).
func newCommitter(brokers []string, cfg *sarama.Config, group, instance string, producers int, log *slog.Logger) *committer {
	if instance == "" {
		var id [6]byte
		_, _ = rand.Read(id[:])
		instance = hex.EncodeToString(id[:])
	}
	c := &committer{brokers: brokers, cfg: cfg, group: group, log: log, reqs: make(chan *pendingCommit, 64)}
	for i := range producers {
		w := &txnWorker{c: c, txnID: fmt.Sprintf("%s-%s-%d", group, instance, i)}
		c.workers = append(c.workers, w)
		c.wg.Go(w.run)
	}
	return c
}

// commit writes msgs and, when last is set, the offset after last in a
// transaction, and returns once it committed or failed. On success the
// messages' Offset fields hold their offsets.
func (c *committer) commit(sess sarama.ConsumerGroupSession, msgs []*sarama.ProducerMessage, last *sarama.ConsumerMessage) error {
	p := &pendingCommit{sess: sess, msgs: msgs, offset: last, result: make(chan error, 1)}
	c.reqs <- p
	return <-p.result
}

// close stops the committer once no commit is waiting, and closes its
// producers. No commit may be called after.
func (c *committer) close() error {
	close(c.reqs)
	c.wg.Wait()
	c.log.Debug("transactions committed", "group", c.group, "transactions", c.txns.Load(), "batches", c.batches.Load())
	var errs []error
	for _, w := range c.workers {
		if w.prod != nil {
			if err := w.closeProducer(); err != nil {
				errs = append(errs, fmt.Errorf("stream: close producer %s: %w", w.txnID, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (w *txnWorker) run() {
	c := w.c
	if _, err := w.producer(); err != nil {
		// The first transaction tries again.
		c.log.Warn("transactional producer", "txn", w.txnID, "err", err)
	}
	var next *pendingCommit // taken from reqs, for the next transaction
	for {
		if next == nil {
			var ok bool
			if next, ok = <-c.reqs; !ok {
				return
			}
		}
		// Everything already waiting joins the transaction, as long as it
		// belongs to the same consumer group session (a transaction's
		// offsets carry one generation).
		txn := []*pendingCommit{next}
		n := len(next.msgs)
		next = nil
	gather:
		for n < maxTxnRecords {
			select {
			case p, ok := <-c.reqs:
				if !ok {
					break gather
				}
				if p.sess != txn[0].sess {
					next = p
					break gather
				}
				txn = append(txn, p)
				n += len(p.msgs)
			default:
				break gather
			}
		}
		err := w.transact(txn)
		if err == nil {
			c.txns.Add(1)
			c.batches.Add(int64(len(txn)))
		}
		for _, p := range txn {
			p.result <- err
		}
	}
}

// transact commits the batches of txn in one transaction.
func (w *txnWorker) transact(txn []*pendingCommit) error {
	prod, err := w.producer()
	if err != nil {
		return err
	}
	if err := prod.BeginTxn(); err != nil {
		return w.abort(fmt.Errorf("begin: %w", err))
	}
	var msgs []*sarama.ProducerMessage
	if len(txn) == 1 {
		msgs = txn[0].msgs
	} else {
		for _, p := range txn {
			msgs = append(msgs, p.msgs...)
		}
	}
	w.mu.Lock()
	w.errs = w.errs[:0]
	w.mu.Unlock()
	for _, m := range msgs {
		prod.Input() <- m
	}
	offsets := map[string][]*sarama.PartitionOffsetMetadata{}
	for _, p := range txn {
		if last := p.offset; last != nil {
			offsets[last.Topic] = append(offsets[last.Topic], &sarama.PartitionOffsetMetadata{Partition: last.Partition, Offset: last.Offset + 1})
		}
	}
	if len(offsets) > 0 {
		meta := sarama.NewConsumerGroupMetadataFromSession(txn[0].sess, w.c.group, nil)
		if err := prod.AddOffsetsToTxnWithGroupMetadata(offsets, meta); err != nil {
			// A record that failed already ends the transaction here.
			return w.abortAfter(msgs, "add offsets", err)
		}
	}
	// The commit waits for every message in flight; one that failed has
	// put the transaction in an error state, and the commit fails.
	if err := prod.CommitTxn(); err != nil {
		return w.abortAfter(msgs, "commit", err)
	}
	return nil
}

// abortAfter aborts the transaction of msgs after step failed with err,
// naming as the cause the records that failed, when some did.
func (w *txnWorker) abortAfter(msgs []*sarama.ProducerMessage, step string, err error) error {
	if perr := w.failed(msgs); perr != nil {
		return w.abort(fmt.Errorf("produce: %w", perr))
	}
	return w.abort(fmt.Errorf("%s: %w", step, err))
}

// failed describes the failures of msgs that the producer reported: how
// many, and the first one's topic and cause. It returns nil when none of
// msgs failed (the commit itself did).
func (w *txnWorker) failed(msgs []*sarama.ProducerMessage) error {
	// An error is on the Errors channel before its message stops being in
	// flight, not necessarily drained yet: wait a moment for it.
	for range 20 {
		w.mu.Lock()
		n := len(w.errs)
		w.mu.Unlock()
		if n > 0 && len(w.prod.Errors()) == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	mine := make(map[*sarama.ProducerMessage]bool, len(msgs))
	for _, m := range msgs {
		mine[m] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var first *sarama.ProducerError
	n := 0
	for _, e := range w.errs {
		if mine[e.Msg] {
			if n++; first == nil {
				first = e
			}
		}
	}
	if first == nil {
		return nil
	}
	return fmt.Errorf("%d of %d records not written, the first to %s: %w", n, len(msgs), first.Msg.Topic, first.Err)
}

// producer returns the transactional producer, creating it when needed.
func (w *txnWorker) producer() (sarama.AsyncProducer, error) {
	if w.prod != nil {
		return w.prod, nil
	}
	cfg := *w.c.cfg
	cfg.Producer.Transaction.ID = w.txnID
	cfg.Producer.Return.Successes = false
	cfg.Producer.Return.Errors = true
	prod, err := sarama.NewAsyncProducer(w.c.brokers, &cfg)
	if err != nil {
		return nil, fmt.Errorf("stream: transactional producer %s: %w", w.txnID, err)
	}
	w.prod = prod
	w.errsWG.Go(func() {
		for e := range prod.Errors() {
			w.mu.Lock()
			w.errs = append(w.errs, e)
			w.mu.Unlock()
		}
	})
	return prod, nil
}

// closeProducer closes the producer and waits for its errors to drain.
func (w *txnWorker) closeProducer() error {
	err := w.prod.Close()
	w.errsWG.Wait()
	w.prod = nil
	return err
}

// abort aborts the open transaction after cause. A producer that cannot go
// on is closed: the next transaction starts a new one with the same
// transactional id, which aborts whatever this one left open.
func (w *txnWorker) abort(cause error) error {
	prod := w.prod
	status := prod.TxnStatus()
	var err error
	switch {
	case status&sarama.ProducerTxnFlagFatalError != 0:
		err = fmt.Errorf("%w: %w", errFatalProducer, cause)
	case status&(sarama.ProducerTxnFlagInTransaction|sarama.ProducerTxnFlagAbortableError) != 0:
		if aerr := prod.AbortTxn(); aerr != nil {
			err = fmt.Errorf("%w: abort: %w (after %w)", errFatalProducer, aerr, cause)
		}
	}
	// A producer left in any other state (a commit whose retries ran out
	// stays "ending") would refuse every later BeginTxn.
	if err == nil && prod.TxnStatus()&sarama.ProducerTxnFlagReady == 0 {
		err = fmt.Errorf("%w: left %s: %w", errFatalProducer, prod.TxnStatus(), cause)
	}
	if err == nil {
		return fmt.Errorf("stream: transaction %s: %w", w.txnID, cause)
	}
	w.c.log.Warn("transactional producer reset", "txn", w.txnID, "err", err)
	_ = w.closeProducer()
	return err
}

var errFatalProducer = errors.New("stream: producer in fatal state")
