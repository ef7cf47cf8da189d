package pipeline

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"slices"
)

// Compressions are the values of kafka.compression.
var Compressions = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// kafka checks the cluster settings.
func (v *validator) kafka() {
	k := v.f.Kafka
	v.brokers(k.Brokers)
	if k.Partitions < 1 {
		v.errorf("kafka.partitions", "kafka.partitions: want at least 1, got %d", k.Partitions)
	}
	if k.ReplicationFactor < 1 {
		v.errorf("kafka.replication_factor", "kafka.replication_factor: want at least 1, got %d", k.ReplicationFactor)
	}
	if k.Version != "" && !kafkaVersion.MatchString(k.Version) {
		v.errorf("kafka.version", "kafka.version: want a Kafka version such as \"3.6.0\", got %q", k.Version)
	}
	if k.Compression != "" && !slices.Contains(Compressions, k.Compression) {
		v.errorf("kafka.compression", "kafka.compression: want none, gzip, snappy, lz4 or zstd, got %q", k.Compression)
	}
	switch k.SASL.Mechanism {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if k.SASL.User == "" {
			v.errorf("kafka.sasl.user", "kafka.sasl.user: required with mechanism %s", k.SASL.Mechanism)
		}
	default:
		v.errorf("kafka.sasl.mechanism", "kafka.sasl.mechanism: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", k.SASL.Mechanism)
	}
	if k.SASL.Mechanism == "" && (k.SASL.User != "" || k.SASL.Password != "") {
		v.errorf("kafka.sasl", "kafka.sasl: user or password without a mechanism, which leaves SASL off: want mechanism PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	}
	if t := k.TLS; !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify) {
		v.errorf("kafka.tls", "kafka.tls: settings without enabled: true, which leaves TLS off: want enabled: true, or no other setting")
	}
	v.file("kafka.tls.ca_file", k.TLS.CAFile)
	v.file("kafka.tls.cert_file", k.TLS.CertFile)
	v.file("kafka.tls.key_file", k.TLS.KeyFile)
	if (k.TLS.CertFile == "") != (k.TLS.KeyFile == "") {
		v.errorf("kafka.tls", "kafka.tls: cert_file and key_file go together")
	}
}

// brokers checks the seed broker list: "embedded" alone, or host:ports.
func (v *validator) brokers(brokers []string) {
	if len(brokers) == 0 {
		v.errorf("kafka.brokers", "kafka.brokers: want at least one host:port, or \"embedded\"")
		return
	}
	if slices.Contains(brokers, DefaultBrokers) {
		if len(brokers) > 1 {
			v.errorf("kafka.brokers", "kafka.brokers: \"embedded\" cannot be combined with other brokers")
		}
		v.hostPort("kafka.embedded_listen", v.f.Kafka.EmbeddedListen)
		return
	}
	for _, b := range brokers {
		v.hostPort("kafka.brokers", b)
	}
}

// file checks that the file named at path, if any, exists.
func (v *validator) file(path, name string) {
	if name == "" {
		return
	}
	if _, err := os.Stat(name); err != nil {
		v.errorf(path, "%s: %s: %s", path, v.rawPath(path, name), fileProblem(err))
	}
}

// rawPath returns the file path at path as the file wrote it.
func (v *validator) rawPath(path, resolved string) string {
	if raw, ok := v.f.raw[path]; ok {
		return raw
	}
	return resolved
}

// fileProblem describes an error from os.Stat or os.Open briefly.
func fileProblem(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// topicOverrides checks the topics: section.
func (v *validator) topicOverrides() {
	for _, name := range slices.Sorted(maps.Keys(v.f.Topics)) {
		path := namePath("topics", name)
		v.topic(path, path, name)
		if t := v.f.Topics[name]; v.f.has(path+".partitions") && t.Partitions < 1 {
			v.errorf(path+".partitions", "%s.partitions: want at least 1, got %d", path, t.Partitions)
		}
	}
}
