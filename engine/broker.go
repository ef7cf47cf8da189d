package engine

import (
	"context"
	"log/slog"

	"github.com/billing-engine/billing/engine/internal/embedded"
)

// RunBroker runs the embedded Kafka broker on addr, keeping its log under
// dataDir, until ctx ends; then it writes its state to disk and returns.
// Several engine instances on one host can share it.
func RunBroker(ctx context.Context, addr, dataDir string, partitions int, log *slog.Logger) error {
	b, err := embedded.Start(addr, dataDir, embedded.Partitions(partitions), embedded.Logger(log))
	if err != nil {
		return err
	}
	log.Info("embedded Kafka broker started", "listen", b.Addr(), "data", dataDir, "partitions", partitions)
	<-ctx.Done()
	b.Close()
	log.Info("embedded Kafka broker stopped")
	return nil
}
