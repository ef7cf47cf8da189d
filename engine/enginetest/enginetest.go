// Package enginetest provides what tests of pipelines and plugins need: the
// embedded Kafka broker on a free loopback port (with SASL users and TLS when
// asked for, see StartBrokerWith and NewCA), a read_committed reader of whole
// topics, and a build of the engine binary for tests that kill it.
package enginetest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/billing-engine/billing/engine/internal/embedded"
)

// Broker is an embedded broker started for one test.
type Broker struct {
	b       *embedded.Broker
	addr    string
	dataDir string
	sasl    *SASL       // what clients authenticate as; nil without SASL
	tls     *tls.Config // what clients connect with; nil without TLS
}

// StartBroker starts the embedded broker on a free loopback port with its
// log under a temporary directory, and stops it when the test ends.
func StartBroker(t testing.TB) *Broker {
	t.Helper()
	return StartBrokerAt(t, FreeAddr(t), t.TempDir())
}

// StartBrokerAt starts the embedded broker on addr with its log in dataDir,
// so that a test can stop it and start it again on the same data.
func StartBrokerAt(t testing.TB, addr, dataDir string) *Broker {
	t.Helper()
	b, err := embedded.Start(addr, dataDir, embedded.Partitions(8))
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	br := &Broker{b: b, addr: b.Addr(), dataDir: dataDir}
	t.Cleanup(br.Close)
	return br
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker; it is safe to call twice.
func (b *Broker) Close() { b.b.Close() }

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Config returns a sarama configuration for test clients of the broker,
// without SASL or TLS: see Broker.ClientConfig for a broker that needs them.
func Config() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	c.Consumer.IsolationLevel = sarama.ReadCommitted
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	return c
}

// Record is a record read back from a topic.
type Record struct {
	Key, Value []byte
	Headers    map[string]string
	Partition  int32
	Offset     int64
	Timestamp  time.Time
}

// ReadAll reads topic from the beginning, read_committed, until it holds
// want records and no more arrive for settle, or until timeout. It returns
// what it read; the caller asserts on it.
func ReadAll(t testing.TB, addr, topic string, want int, settle, timeout time.Duration) []Record {
	t.Helper()
	return ReadAllWith(t, Config(), addr, topic, want, settle, timeout)
}

// ReadAllWith is ReadAll with the client configuration cfg, such as
// Broker.ClientConfig for a broker with SASL or TLS. cfg should read
// committed records from the oldest offset, as Config does.
func ReadAllWith(t testing.TB, cfg *sarama.Config, addr, topic string, want int, settle, timeout time.Duration) []Record {
	t.Helper()
	client, err := sarama.NewClient([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	var mu sync.Mutex
	var out []Record
	last := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("consume %s/%d: %v", topic, p, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.Close()
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-pc.Messages():
					mu.Lock()
					out = append(out, toRecord(m))
					last = time.Now()
					mu.Unlock()
				}
			}
		}()
	}
	for ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		done := len(out) >= want && time.Since(last) >= settle
		mu.Unlock()
		if done {
			break
		}
	}
	cancel()
	wg.Wait()
	return out
}

func toRecord(m *sarama.ConsumerMessage) Record {
	h := make(map[string]string, len(m.Headers))
	for _, rh := range m.Headers {
		h[string(rh.Key)] = string(rh.Value)
	}
	return Record{Key: m.Key, Value: m.Value, Headers: h, Partition: m.Partition, Offset: m.Offset, Timestamp: m.Timestamp}
}

// Produce writes records to topic with a plain sarama producer and waits
// for every acknowledgement.
func Produce(t testing.TB, addr, topic string, keys, values [][]byte) {
	t.Helper()
	ProduceWith(t, Config(), addr, topic, keys, values)
}

// ProduceWith is Produce with the client configuration cfg, such as
// Broker.ClientConfig for a broker with SASL or TLS. cfg must return
// successes, as Config does.
func ProduceWith(t testing.TB, cfg *sarama.Config, addr, topic string, keys, values [][]byte) {
	t.Helper()
	prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	defer prod.Close()
	msgs := make([]*sarama.ProducerMessage, len(values))
	for i := range values {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Key: sarama.ByteEncoder(keys[i]), Value: sarama.ByteEncoder(values[i])}
	}
	for start := 0; start < len(msgs); start += 1000 {
		end := min(start+1000, len(msgs))
		if err := prod.SendMessages(msgs[start:end]); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
}

// RepoRoot returns the module's root directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// BuildEngine builds cmd/engine once per test binary and returns its path.
func BuildEngine(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "engine-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, "engine"), "./cmd/engine")
		cmd.Dir = RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/engine: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "engine")
}
