package pipeline

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"
)

// Defaults, documented on the fields they fill.
const (
	DefaultApplicationID     = "billing"
	DefaultDataDir           = "./data"
	DefaultSchemasDir        = "../schemas"
	DefaultBrokers           = "embedded"
	DefaultEmbeddedListen    = "127.0.0.1:9092"
	DefaultPartitions        = 8
	DefaultReplicationFactor = 1
	// DefaultCompression is the compression of produced records: snappy,
	// whose encoder in sarama (klauspost/compress) compresses transaction
	// records about 3.4 times as fast as its lz4 encoder (pierrec/lz4) at
	// the same ratio, 795 against 235 MB/s on the 2-core AMD EPYC VM.
	DefaultCompression   = "snappy"
	DefaultHTTPListen    = "127.0.0.1:8080"
	DefaultDSN           = "embedded"
	DefaultEmailFrom     = "billing@localhost"
	DefaultPluginTimeout = 30 * time.Second
	DefaultMaxBatch      = 500
	DefaultMaxWait       = 5 * time.Millisecond
	DefaultRetries       = 3
	DefaultBackoff       = 100 * time.Millisecond
	// BuiltinBranch is the in-process predicate router, always available.
	BuiltinBranch = "branch"
)

// has reports whether the file set the value at path.
func (f *File) has(path string) bool {
	_, ok := f.pos[path]
	return ok
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// applyDefaults fills every value the file left out and resolves relative
// paths against the file's directory.
func (f *File) applyDefaults() {
	if !f.has("version") {
		f.Version = 1
	}
	f.ApplicationID = orDefault(f.ApplicationID, DefaultApplicationID)
	f.DataDir = orDefault(f.DataDir, DefaultDataDir)
	f.SchemasDir = f.resolve("schemas", orDefault(f.SchemasDir, DefaultSchemasDir))
	f.kafkaDefaults()
	f.HTTP.Listen = orDefault(f.HTTP.Listen, DefaultHTTPListen)
	f.HTTP.Advertise = orDefault(f.HTTP.Advertise, "http://"+f.HTTP.Listen)
	f.Database.DSN = orDefault(f.Database.DSN, DefaultDSN)
	f.Email.From = orDefault(f.Email.From, DefaultEmailFrom)
	for name, p := range f.Plugins {
		path := namePath("plugins", name)
		if !f.has(path + ".timeout") {
			p.Timeout = DefaultPluginTimeout
		}
		if p.Command != "" {
			p.Command = f.resolve(path+".command", p.Command)
		}
		f.Plugins[name] = p
	}
	for i := range f.Pipelines {
		f.pipelineDefaults(fmt.Sprintf("pipelines[%d]", i), &f.Pipelines[i])
	}
}

func (f *File) kafkaDefaults() {
	k := &f.Kafka
	if len(k.Brokers) == 0 {
		k.Brokers = []string{DefaultBrokers}
	}
	k.EmbeddedListen = orDefault(k.EmbeddedListen, DefaultEmbeddedListen)
	if !f.has("kafka.exactly_once") {
		k.ExactlyOnce = true
	}
	if !f.has("kafka.create_topics") {
		k.CreateTopics = true
	}
	if !f.has("kafka.partitions") {
		k.Partitions = DefaultPartitions
	}
	if !f.has("kafka.replication_factor") {
		k.ReplicationFactor = DefaultReplicationFactor
	}
	k.ClientID = orDefault(k.ClientID, f.ApplicationID)
	k.Compression = orDefault(k.Compression, DefaultCompression)
	tls := map[string]*string{
		"kafka.tls.ca_file":   &k.TLS.CAFile,
		"kafka.tls.cert_file": &k.TLS.CertFile,
		"kafka.tls.key_file":  &k.TLS.KeyFile,
	}
	for path, dst := range tls {
		if *dst != "" {
			*dst = f.resolve(path, *dst)
		}
	}
}

func (f *File) pipelineDefaults(path string, p *Pipeline) {
	if !f.has(path + ".source.max_batch") {
		p.Source.MaxBatch = DefaultMaxBatch
	}
	if !f.has(path + ".source.max_wait") {
		p.Source.MaxWait = DefaultMaxWait
	}
	for i := range p.Stages {
		s := &p.Stages[i]
		switch {
		case s.Name != "":
		case s.Filter != "":
			s.Name = "filter-" + strconv.Itoa(i)
		case s.Plugin != "":
			s.Name = s.Plugin + "-" + strconv.Itoa(i)
		}
	}
	for i := range p.Branches {
		p.Branches[i].Name = orDefault(p.Branches[i].Name, p.Branches[i].To)
	}
	if !f.has(path + ".errors.retries") {
		p.Errors.Retries = DefaultRetries
	}
	if !f.has(path + ".errors.backoff") {
		p.Errors.Backoff = DefaultBackoff
	}
	if p.Errors.DLQ == "" && p.Source.Topic != "" {
		p.Errors.DLQ = p.Source.Topic + ".dlq"
	}
}

// resolve makes the file path p, found at key path, absolute against the
// pipeline file's directory, remembering p as written for messages.
func (f *File) resolve(path, p string) string {
	f.raw[path] = p
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(f.Path), p)
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return filepath.Clean(p)
}
