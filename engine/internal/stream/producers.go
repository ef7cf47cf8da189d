package stream

import (
	"errors"
	"fmt"
	"sync"

	"github.com/IBM/sarama"
)

// producerPool keeps one transactional producer per transactional ID, so a
// partition that comes back after a rebalance reuses its producer. A
// producer that failed fatally (fenced by a newer owner, say) is discarded
// and the next get builds a new one.
type producerPool struct {
	brokers []string
	cfg     *sarama.Config

	mu    sync.Mutex
	byTxn map[string]sarama.SyncProducer
}

func newProducerPool(brokers []string, cfg *sarama.Config) *producerPool {
	return &producerPool{brokers: brokers, cfg: cfg, byTxn: make(map[string]sarama.SyncProducer)}
}

// get returns the producer for txnID, creating it (which fences any earlier
// holder of txnID and aborts its open transaction) when needed.
func (p *producerPool) get(txnID string) (sarama.SyncProducer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if prod, ok := p.byTxn[txnID]; ok {
		return prod, nil
	}
	cfg := *p.cfg
	cfg.Producer.Transaction.ID = txnID
	prod, err := sarama.NewSyncProducer(p.brokers, &cfg)
	if err != nil {
		return nil, fmt.Errorf("stream: transactional producer %s: %w", txnID, err)
	}
	p.byTxn[txnID] = prod
	return prod, nil
}

// discard closes and forgets the producer for txnID.
func (p *producerPool) discard(txnID string) {
	p.mu.Lock()
	prod, ok := p.byTxn[txnID]
	delete(p.byTxn, txnID)
	p.mu.Unlock()
	if ok {
		_ = prod.Close()
	}
}

// close closes every producer.
func (p *producerPool) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for id, prod := range p.byTxn {
		if err := prod.Close(); err != nil {
			errs = append(errs, fmt.Errorf("stream: close producer %s: %w", id, err))
		}
		delete(p.byTxn, id)
	}
	return errors.Join(errs...)
}
