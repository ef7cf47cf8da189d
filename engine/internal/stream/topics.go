package stream

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"

	"github.com/billing-engine/billing/engine/internal/pipeline"
)

// EnsureTopics creates every topic in specs that does not exist yet and
// reports, without changing anything, an existing topic whose partition count
// differs. It retries while the cluster is still coming up, until ctx ends.
func EnsureTopics(ctx context.Context, brokers []string, cfg *sarama.Config, specs []pipeline.TopicSpec, log *slog.Logger) error {
	admin, err := connectAdmin(ctx, brokers, cfg, log)
	if err != nil {
		return err
	}
	defer admin.Close()
	existing, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("stream: list topics: %w", err)
	}
	var errs []error
	for _, s := range specs {
		if d, ok := existing[s.Name]; ok {
			if d.NumPartitions != s.Partitions {
				log.Warn("topic exists with another partition count; keeping it", "topic", s.Name, "partitions", d.NumPartitions, "configured", s.Partitions)
			}
			if s.KeepRecords {
				checkKeepsRecords(admin, s.Name, log)
			}
			continue
		}
		detail := &sarama.TopicDetail{NumPartitions: s.Partitions, ReplicationFactor: s.ReplicationFactor, ConfigEntries: map[string]*string{}}
		if s.Compact {
			policy := "compact"
			detail.ConfigEntries["cleanup.policy"] = &policy
		}
		if s.KeepRecords {
			forever := "-1"
			detail.ConfigEntries["retention.ms"] = &forever
		}
		err := admin.CreateTopic(s.Name, detail, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("stream: create topic %s: %w", s.Name, err))
			continue
		}
		log.Info("created topic", "topic", s.Name, "partitions", s.Partitions)
	}
	return errors.Join(errs...)
}

// checkKeepsRecords warns when topic, the source of a table restored from
// its source, may delete records that a restore from nothing needs.
func checkKeepsRecords(admin sarama.ClusterAdmin, topic string, log *slog.Logger) {
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"retention.ms"}})
	if err != nil {
		log.Warn("cannot read the retention of a table's source topic", "topic", topic, "err", err)
		return
	}
	for _, e := range entries {
		if e.Name == "retention.ms" && e.Value != "-1" {
			log.Warn("a table is restored from this topic (changelog: source), and the topic deletes records: a restore from nothing lacks what has expired; set retention.ms=-1",
				"topic", topic, "retention.ms", e.Value)
		}
	}
}

// connectAdmin retries the connection until ctx ends, so the engine can
// start before its brokers, logging why it cannot connect (at once, then
// every 30s). It gives up at once when retrying cannot help: the brokers
// refused the credentials, or their certificate is not trusted.
func connectAdmin(ctx context.Context, brokers []string, cfg *sarama.Config, log *slog.Logger) (sarama.ClusterAdmin, error) {
	backoff := 100 * time.Millisecond
	var logged time.Time
	for {
		admin, err := sarama.NewClusterAdmin(brokers, cfg)
		if err == nil {
			return admin, nil
		}
		if permanent(err) {
			return nil, fmt.Errorf("stream: connect to %v: %w", brokers, err)
		}
		if time.Since(logged) >= 30*time.Second {
			log.Warn("cannot connect to kafka; retrying", "brokers", brokers, "err", err)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("stream: connect to %v: %w", brokers, err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// permanent reports whether err, from connecting, is one that retrying
// cannot fix.
func permanent(err error) bool {
	var authority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.Is(err, sarama.ErrSASLAuthenticationFailed) ||
		errors.As(err, &authority) || errors.As(err, &hostname) || errors.As(err, &invalid)
}
