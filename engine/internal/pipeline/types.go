package pipeline

import (
	"time"

	"gopkg.in/yaml.v3"
)

// File is a loaded, interpolated pipeline file. Every value has had
// `${VAR:-default}` interpolation applied and defaults filled in by Load.
type File struct {
	// Path is the file the configuration was read from.
	Path string
	// Version is the file format version; only 1 exists.
	Version int
	// ApplicationID names the consumer groups (<app>-<pipeline>) and
	// prefixes internal topics and transactional IDs. Default "billing".
	ApplicationID string
	// DataDir holds the embedded broker log, databases, state stores and
	// the email outbox. Default "./data".
	DataDir string
	// SchemasDir is the directory of .avsc files, resolved relative to the
	// pipeline file. Default "../schemas".
	SchemasDir string
	// Kafka configures the cluster connection.
	Kafka Kafka
	// HTTP configures the API server.
	HTTP HTTP
	// Database configures the SQL store.
	Database Database
	// Email configures notifications.
	Email Email
	// Topics holds per-topic overrides, by topic name.
	Topics map[string]Topic
	// Plugins declares plugins by name. A name without an entry that the
	// engine has registered in-process (such as "branch") needs none.
	Plugins map[string]Plugin
	// Pipelines are the stream pipelines, in file order.
	Pipelines []Pipeline

	// pos records where each key was found, for error messages, by path
	// ("kafka.partitions", "pipelines[0].source.topic",
	// `plugins["billing"].command`). A path is present only when the file
	// set the value; defaults fill the others.
	pos map[string]Pos
	// exprs holds the scalar nodes of filters and whens by path, to map
	// the columns of expression errors back to the file.
	exprs map[string]*yaml.Node
	// raw holds file paths as written, by path, before resolution against
	// the file's directory, for messages.
	raw map[string]string
	// src is the file's text.
	src *source
}

// Pos is a position in the pipeline file.
type Pos struct {
	Line, Column int
}

// Kafka configures the connection to the Kafka cluster.
type Kafka struct {
	// Brokers lists seed brokers; the single value "embedded" starts the
	// embedded broker at EmbeddedListen. Default "embedded".
	Brokers []string
	// EmbeddedListen is where the embedded broker listens. Default
	// "127.0.0.1:9092".
	EmbeddedListen string
	// ExactlyOnce commits sink records and consumed offsets in one Kafka
	// transaction. Default true.
	ExactlyOnce bool
	// CreateTopics creates missing topics at start. Default true.
	CreateTopics bool
	// Partitions is the partition count of topics the engine creates.
	// Default 8.
	Partitions int32
	// ReplicationFactor of topics the engine creates. Default 1.
	ReplicationFactor int16
	// Version is the Kafka protocol version to speak, e.g. "3.6.0".
	// Default: sarama's newest supported.
	Version string
	// ClientID is sent to the brokers. Default the application id.
	ClientID string
	// Compression of the records the engine produces: none, gzip,
	// snappy, lz4 or zstd. Default snappy.
	Compression string
	// SASL authentication; zero Mechanism disables it.
	SASL SASL
	// TLS settings; Enabled false disables TLS.
	TLS TLS
}

// SASL holds SASL settings passed through to sarama.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string
	User      string
	Password  string
}

// TLS holds TLS settings passed through to sarama.
type TLS struct {
	Enabled            bool
	CAFile             string
	CertFile           string
	KeyFile            string
	InsecureSkipVerify bool
	ServerName         string
}

// HTTP configures the API server.
type HTTP struct {
	// Listen address. Default "127.0.0.1:8080".
	Listen string
	// Advertise is this instance's URL for query routing. Default
	// "http://" + Listen.
	Advertise string
	// APIToken, when set, is required as a bearer token on /api/.
	APIToken string
	// APIReadToken, when set with APIToken, is also accepted for GET and
	// HEAD calls on /api/: a token for dashboards and queries that cannot
	// change anything.
	APIReadToken string
}

// Database configures the SQL store.
type Database struct {
	// DSN is "embedded" (SQLite under DataDir) or "mysql://...".
	DSN string
}

// Email configures notifications.
type Email struct {
	// SMTPAddr is host:port; empty writes .eml files to DataDir/outbox.
	SMTPAddr string
	// From is the sender. Default "billing@localhost".
	From string
}

// Topic holds per-topic settings.
type Topic struct {
	// Partitions overrides Kafka.Partitions for this topic.
	Partitions int32
	// Compact makes the topic compacted.
	Compact bool
}

// Plugin declares a plugin.
type Plugin struct {
	// Name is the key the plugin was declared under.
	Name string
	// Command is the plugin binary, resolved relative to the pipeline
	// file. Empty means an in-process plugin registered with the engine.
	Command string
	// Args are passed to the binary.
	Args []string
	// SHA256 pins the binary's checksum (hex), when set.
	SHA256 string
	// Timeout bounds one batch call. Default 30s.
	Timeout time.Duration
	// Config is passed to the plugin when it starts.
	Config map[string]any
	// Pos is where the plugin was declared.
	Pos Pos
}

// Pipeline is one source-to-sinks flow.
type Pipeline struct {
	// Name is unique in the file; the consumer group is <app>-<name>.
	Name string
	// Source is the input topic.
	Source Source
	// Stages run in order on every record.
	Stages []Stage
	// Branches route each record that leaves the last stage; the first
	// matching branch wins. Evaluated by the "branch" plugin.
	Branches []Branch
	// Tables are kept from the records that leave the last stage, before
	// branching.
	Tables []Table
	// Errors is the error policy.
	Errors ErrorPolicy
	// Pos is where the pipeline was declared.
	Pos Pos
}

// The values of Table.Changelog.
const (
	ChangelogTopic  = "topic"
	ChangelogSource = "source"
)

// Table declares a state table (see package state for the semantics).
type Table struct {
	// Name is unique in the file; it names the changelog topic
	// <app>-<name>-changelog (unless Changelog is source) and the query
	// path /api/v1/tables/<name>/.
	Name string
	// Kind is latest, count or aggregate.
	Kind string
	// Fields a latest table keeps; empty keeps the whole record.
	Fields []string
	// GroupBy is the field keying a count or aggregate; empty: the record
	// key. Another field re-keys through <app>-<name>-repartition.
	GroupBy string
	// By splits each group into sub-groups by these fields' values.
	By []string
	// Sum is the integer field an aggregate sums.
	Sum string
	// From aggregates the current values of this latest table instead of
	// the record stream.
	From string
	// Window is the size of tumbling windows; zero: no windows.
	Window time.Duration
	// TimeField is the timestamp field of windows; empty: the record time.
	TimeField string
	// Version is a latest table's version field (a timestamp or integer,
	// such as updated_at): a record older than the stored row changes
	// nothing. Empty: the last record to arrive wins.
	Version string
	// Changelog is what a latest table is restored from: ChangelogTopic
	// (the default), its compacted changelog topic, or ChangelogSource,
	// the pipeline's source topic (no changelog records are written; the
	// source must keep its records, and only filters may come before the
	// table).
	Changelog string
	// Pos is where the table was declared.
	Pos Pos
}

// Source is a pipeline's input.
type Source struct {
	Topic string
	// Schema is the reader schema's name, e.g. "Transaction".
	Schema string
	// MaxBatch bounds the records processed in one batch (one Kafka
	// transaction per partition). Default 500.
	MaxBatch int
	// MaxWait bounds how long a batch waits to fill. Default 5ms.
	MaxWait time.Duration
	// Pos is where the source was declared.
	Pos Pos
}

// Stage is one processing step: a filter or a plugin.
type Stage struct {
	// Name is unique in the pipeline. Default "<kind>-<index>".
	Name string
	// Filter, when set, drops records for which it is false.
	Filter string
	// Plugin, when set, names the plugin that processes the batch.
	Plugin string
	// Config is passed to the plugin (merged over the plugin's own).
	Config map[string]any
	// Outputs maps plugin output names to topics. Records emitted to the
	// output "" (or "next") go on to the next stage.
	Outputs map[string]string
	// Pos, FilterPos: where the stage and its filter were declared.
	Pos       Pos
	FilterPos Pos
}

// Branch is one route.
type Branch struct {
	// Name identifies the branch in metrics and graphs. Default the topic.
	Name string
	// When is a boolean expression; empty only with Default.
	When string
	// Default marks the route for records no other branch took.
	Default bool
	// To is the sink topic.
	To string
	// Pos, WhenPos: where the branch and its expression were declared.
	Pos     Pos
	WhenPos Pos
}

// ErrorPolicy says what happens to records that fail.
type ErrorPolicy struct {
	// Retries of a failed batch before its records go to the DLQ.
	// Default 3.
	Retries int
	// Backoff before the first retry, doubled each time. Default 100ms.
	Backoff time.Duration
	// DLQ is the dead-letter topic. Default "<source topic>.dlq".
	DLQ string
}
