package stream

import (
	"errors"
	"testing"

	"github.com/IBM/sarama"

	"github.com/billing-engine/billing/engine/internal/pipeline"
)

// kafka.compression picks the producers' codec; unset is snappy, and a value
// the validator would refuse is an error here too.
func TestSaramaConfigCompression(t *testing.T) {
	for _, tc := range []struct {
		setting string
		want    sarama.CompressionCodec
	}{
		{"", sarama.CompressionSnappy},
		{"none", sarama.CompressionNone},
		{"gzip", sarama.CompressionGZIP},
		{"snappy", sarama.CompressionSnappy},
		{"lz4", sarama.CompressionLZ4},
		{"zstd", sarama.CompressionZSTD},
	} {
		cfg, err := SaramaConfig(pipeline.Kafka{Compression: tc.setting})
		if err != nil {
			t.Fatalf("compression %q: %v", tc.setting, err)
		}
		if cfg.Producer.Compression != tc.want {
			t.Errorf("compression %q: codec %v, want %v", tc.setting, cfg.Producer.Compression, tc.want)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("compression %q: sarama refuses the config: %v", tc.setting, err)
		}
	}
	for _, c := range pipeline.Compressions {
		if _, err := SaramaConfig(pipeline.Kafka{Compression: c}); err != nil {
			t.Errorf("pipeline.Compressions has %q, SaramaConfig refuses it: %v", c, err)
		}
	}
	if _, err := SaramaConfig(pipeline.Kafka{Compression: "brotli"}); !errors.Is(err, ErrKafkaConfig) {
		t.Errorf("compression brotli: err %v, want ErrKafkaConfig", err)
	}
}
