package stream

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/IBM/sarama"
)

// committer commits the batches of every partition a Runner owns through
// one transactional producer: whatever batches are ready when a transaction
// starts go into it together (their sink, changelog and DLQ records, and
// their consumed offsets), as Kafka Streams does under exactly_once_v2
// (KIP-447). While one transaction commits, the partitions' next batches
// queue for the next one, so under load a transaction carries a batch of
// every busy partition, and at a low rate a batch waits for no other.
//
// A zombie (an instance that lost its partitions in a rebalance it has not
// seen yet) is fenced by the consumer group: its offsets are sent with its
// group generation, which the broker refuses once the group has moved on,
// and the transaction with them aborts.
type committer struct {
	brokers []string
	cfg     *sarama.Config
	group   string
	txnID   string
	log     *slog.Logger

	reqs chan *pendingCommit
	done chan struct{}
	prod sarama.SyncProducer // only the run goroutine uses it

	// txns and batches count committed transactions and the batches they
	// carried (logged when the committer stops).
	txns, batches atomic.Int64
}

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

func newCommitter(brokers []string, cfg *sarama.Config, group string, log *slog.Logger) *committer {
	var id [6]byte
	_, _ = rand.Read(id[:])
	c := &committer{
		brokers: brokers, cfg: cfg, group: group, log: log,
		// One transactional id per process and pipeline: a restarted
		// process is a new producer, and what its predecessor left open is
		// aborted by the broker's transaction timeout (see SaramaConfig).
		txnID: group + "-" + hex.EncodeToString(id[:]),
		reqs:  make(chan *pendingCommit, 64),
		done:  make(chan struct{}),
	}
	go c.run()
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
// producer. No commit may be called after.
func (c *committer) close() error {
	close(c.reqs)
	<-c.done
	c.log.Debug("transactions committed", "txn", c.txnID, "transactions", c.txns.Load(), "batches", c.batches.Load())
	if c.prod != nil {
		if err := c.prod.Close(); err != nil {
			return fmt.Errorf("stream: close producer %s: %w", c.txnID, err)
		}
	}
	return nil
}

func (c *committer) run() {
	defer close(c.done)
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
		err := c.transact(txn)
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
func (c *committer) transact(txn []*pendingCommit) error {
	prod, err := c.producer()
	if err != nil {
		return err
	}
	if err := prod.BeginTxn(); err != nil {
		return c.abort(fmt.Errorf("begin: %w", err))
	}
	var msgs []*sarama.ProducerMessage
	if len(txn) == 1 {
		msgs = txn[0].msgs
	} else {
		for _, p := range txn {
			msgs = append(msgs, p.msgs...)
		}
	}
	if len(msgs) > 0 {
		if err := prod.SendMessages(msgs); err != nil {
			return c.abort(fmt.Errorf("produce: %w", err))
		}
	}
	offsets := map[string][]*sarama.PartitionOffsetMetadata{}
	for _, p := range txn {
		if last := p.offset; last != nil {
			offsets[last.Topic] = append(offsets[last.Topic], &sarama.PartitionOffsetMetadata{Partition: last.Partition, Offset: last.Offset + 1})
		}
	}
	if len(offsets) > 0 {
		meta := sarama.NewConsumerGroupMetadataFromSession(txn[0].sess, c.group, nil)
		if err := prod.AddOffsetsToTxnWithGroupMetadata(offsets, meta); err != nil {
			return c.abort(fmt.Errorf("add offsets: %w", err))
		}
	}
	if err := prod.CommitTxn(); err != nil {
		return c.abort(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// producer returns the transactional producer, creating it when needed.
func (c *committer) producer() (sarama.SyncProducer, error) {
	if c.prod != nil {
		return c.prod, nil
	}
	cfg := *c.cfg
	cfg.Producer.Transaction.ID = c.txnID
	prod, err := sarama.NewSyncProducer(c.brokers, &cfg)
	if err != nil {
		return nil, fmt.Errorf("stream: transactional producer %s: %w", c.txnID, err)
	}
	c.prod = prod
	return prod, nil
}

// abort aborts the open transaction after cause. A producer that cannot go
// on is closed: the next transaction starts a new one with the same
// transactional id, which aborts whatever this one left open.
func (c *committer) abort(cause error) error {
	prod := c.prod
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
	if err == nil {
		return fmt.Errorf("stream: transaction: %w", cause)
	}
	c.log.Warn("transactional producer reset", "txn", c.txnID, "err", err)
	_ = prod.Close()
	c.prod = nil
	return err
}

var errFatalProducer = errors.New("stream: producer in fatal state")
