package stream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/IBM/sarama"

	"github.com/billing-engine/billing/engine/internal/pipeline"
	"github.com/billing-engine/billing/engine/internal/pollnet"
)

// ErrKafkaConfig reports Kafka settings sarama cannot use.
var ErrKafkaConfig = errors.New("stream: kafka config")

// SaramaConfig turns the pipeline file's Kafka settings into a sarama
// configuration shared by the engine's consumers, producers and admin
// client. Callers copy it before setting per-client fields.
func SaramaConfig(k pipeline.Kafka) (*sarama.Config, error) {
	cfg := sarama.NewConfig()
	cfg.ClientID = k.ClientID
	cfg.Version = sarama.V3_6_0_0
	if k.Version != "" {
		v, err := sarama.ParseKafkaVersion(k.Version)
		if err != nil {
			return nil, fmt.Errorf("%w: version %q: %w", ErrKafkaConfig, k.Version, err)
		}
		cfg.Version = v
	}
	cfg.Metadata.RefreshFrequency = time.Minute
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Fetch.Default = 4 << 20
	cfg.Consumer.MaxProcessingTime = 30 * time.Second
	cfg.Consumer.Group.Session.Timeout = 10 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 2 * time.Second
	// The broker may hold a JoinGroup or SyncGroup for up to the rebalance
	// timeout, but sarama gives every request Net.ReadTimeout (30s). With
	// sarama's 60s default, a join that waits for a member that died
	// mid-join (an engine SIGKILLed while starting) times out on the
	// client, whose retry restarts the wait (the embedded broker resets the
	// deadline on each join), and the group never settles. Below the read
	// timeout the broker ends the wait first and drops the dead member.
	cfg.Consumer.Group.Rebalance.Timeout = 20 * time.Second
	// Range, not sticky: sticky keeps its own state in the member user data,
	// where the engine advertises its HTTP URL for query routing.
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	cfg.ChannelBufferSize = 1024
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Retry.Max = 10
	cfg.Producer.Retry.Backoff = 50 * time.Millisecond
	cfg.Producer.MaxMessageBytes = 1 << 20
	cfg.Producer.Flush.Frequency = time.Millisecond
	// A broker answers CONCURRENT_TRANSACTIONS while it finishes the previous
	// commit of the same producer; sarama's 100ms default backoff would
	// stall the partition far longer than that takes.
	cfg.Producer.Transaction.Retry.Backoff = 5 * time.Millisecond
	// A process killed mid-transaction leaves it open, and its offsets
	// "unstable": a new consumer group session cannot fetch them until the
	// transaction is aborted. The same instance restarted aborts it when its
	// producers start (they take over its transactional ids, see
	// RunnerConfig.InstanceID); for an instance that does not come back, the
	// broker's timeout is what unblocks the new owner. Kafka Streams uses
	// 10s for the same reason; a transaction here spans only a batch's send
	// and commit.
	cfg.Producer.Transaction.Timeout = 10 * time.Second
	cfg.Producer.Transaction.Retry.Max = 200
	cfg.Producer.Flush.Bytes = 1 << 20
	compression, ok := map[string]sarama.CompressionCodec{
		"": sarama.CompressionSnappy, "none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
		"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
	}[k.Compression]
	if !ok {
		return nil, fmt.Errorf("%w: compression %q", ErrKafkaConfig, k.Compression)
	}
	cfg.Producer.Compression = compression
	cfg.Producer.Partitioner = NewPartitioner
	// Every record sarama passes on is a chance to answer a query that
	// arrived meanwhile, on a goroutine that is running anyway (see
	// pollnet.Poll): sarama's goroutines do most of the work at full speed.
	cfg.Producer.Interceptors = []sarama.ProducerInterceptor{arrivals{}}
	cfg.Consumer.Interceptors = []sarama.ConsumerInterceptor{arrivals{}}
	cfg.Net.MaxOpenRequests = 1
	if err := applySASL(cfg, k.SASL); err != nil {
		return nil, err
	}
	if err := applyTLS(cfg, k.TLS); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKafkaConfig, err)
	}
	return cfg, nil
}

func applySASL(cfg *sarama.Config, s pipeline.SASL) error {
	if s.Mechanism == "" {
		return nil
	}
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.User = s.User
	cfg.Net.SASL.Password = s.Password
	cfg.Net.SASL.Handshake = true
	switch s.Mechanism {
	case sarama.SASLTypePlaintext:
		cfg.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case sarama.SASLTypeSCRAMSHA256:
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		cfg.Net.SASL.SCRAMClientGeneratorFunc = newSCRAM256
	case sarama.SASLTypeSCRAMSHA512:
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		cfg.Net.SASL.SCRAMClientGeneratorFunc = newSCRAM512
	default:
		return fmt.Errorf("%w: sasl mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", ErrKafkaConfig, s.Mechanism)
	}
	return nil
}

func applyTLS(cfg *sarama.Config, t pipeline.TLS) error {
	if !t.Enabled {
		return nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // the user's explicit setting
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return fmt.Errorf("%w: tls ca_file: %w", ErrKafkaConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%w: tls ca_file %s: no PEM certificates", ErrKafkaConfig, t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return fmt.Errorf("%w: tls client certificate: %w", ErrKafkaConfig, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	cfg.Net.TLS.Enable = true
	cfg.Net.TLS.Config = tc
	return nil
}

// arrivals is a sarama interceptor that lets each record sent or received
// run pollnet.Poll; it changes no record. sarama calls it from its
// producer's dispatcher and its partition consumers' feeders, holding no
// lock of the engine's.
type arrivals struct{}

func (arrivals) OnSend(*sarama.ProducerMessage)    { pollnet.Poll() }
func (arrivals) OnConsume(*sarama.ConsumerMessage) { pollnet.Poll() }
