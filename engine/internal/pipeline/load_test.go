package pipeline

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const billingFile = "../../../pipelines/billing.yaml"

func noEnv(string) (string, bool) { return "", false }

// mapEnv looks variables up in a map.
func mapEnv(m map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// engineBuiltin are the in-process plugins the engine registers besides
// branch, which the billing file uses.
var engineBuiltin = map[string]bool{"db-upsert": true}

func TestBillingFile(t *testing.T) {
	f, err := Load(billingFile, WithLookupEnv(testEnv))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if err := Validate(f, ValidateOptions{Builtin: engineBuiltin}); err != nil {
		t.Fatalf("Validate:\n%v", err)
	}
	schemas, _ := filepath.Abs("../../../schemas")
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"ApplicationID", f.ApplicationID, "billing"},
		{"DataDir", f.DataDir, "./data"},
		{"SchemasDir", f.SchemasDir, schemas},
		{"Kafka.Brokers", f.Kafka.Brokers, []string{"embedded"}},
		{"HTTP.Advertise", f.HTTP.Advertise, "http://127.0.0.1:8080"},
		{"HTTP.APIToken", f.HTTP.APIToken, ""},
		{"Email.SMTPAddr", f.Email.SMTPAddr, ""},
		{"Kafka.SASL", f.Kafka.SASL, SASL{}},
		{"Kafka.TLS", f.Kafka.TLS, TLS{}},
		{"pipelines", len(f.Pipelines), 6},
		{"tables", len(f.Pipelines[0].Tables), 3},
		{"table kind", f.Pipelines[0].Tables[1].Kind, "aggregate"},
		{"branches", len(f.Pipelines[0].Branches), 5},
		{"DLQ", f.Pipelines[0].Errors.DLQ, "transactions.dlq"},
		{"when", f.Pipelines[0].Branches[0].When, `status == "APPROVED"`},
		{"WhenPos", f.Pipelines[0].Branches[0].WhenPos, textPos(t, billingFile, `'status == "APPROVED"'`)},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

// textPos returns the position of the first occurrence of text in the file
// at path, so that the test does not break when lines are added above it.
func textPos(t *testing.T, path, text string) Pos {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(src), "\n") {
		if col := strings.Index(line, text); col >= 0 {
			return Pos{Line: i + 1, Column: col + 1}
		}
	}
	t.Fatalf("%s: no %s", path, text)
	return Pos{}
}

func TestBillingFileEnv(t *testing.T) {
	env := mapEnv(map[string]string{
		"BILLING_KAFKA_BROKERS":  "kafka-1:9092, kafka-2:9092",
		"BILLING_HTTP_LISTEN":    "0.0.0.0:9000",
		"BILLING_APPLICATION_ID": "billing-eu",
		"BILLING_API_TOKEN":      "secret",

		"BILLING_KAFKA_SASL_MECHANISM":  "SCRAM-SHA-512",
		"BILLING_KAFKA_SASL_USER":       "billing",
		"BILLING_KAFKA_SASL_PASSWORD":   "s3cret",
		"BILLING_KAFKA_TLS":             "true",
		"BILLING_KAFKA_TLS_CA_FILE":     "/etc/kafka/ca.pem",
		"BILLING_KAFKA_TLS_SERVER_NAME": "kafka.internal",
	})
	f, err := Load(billingFile, WithLookupEnv(env))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"Brokers", f.Kafka.Brokers, []string{"kafka-1:9092", "kafka-2:9092"}},
		{"Advertise", f.HTTP.Advertise, "http://0.0.0.0:9000"},
		{"ClientID", f.Kafka.ClientID, "billing-eu"},
		{"APIToken", f.HTTP.APIToken, "secret"},
		{"SASL", f.Kafka.SASL, SASL{Mechanism: "SCRAM-SHA-512", User: "billing", Password: "s3cret"}},
		{"TLS", f.Kafka.TLS, TLS{Enabled: true, CAFile: "/etc/kafka/ca.pem", ServerName: "kafka.internal"}},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

// parse parses text as a file in testdata/.
func parse(t *testing.T, text string, opts ...LoadOption) *File {
	t.Helper()
	f, err := Parse("testdata/test.yaml", []byte(text), append([]LoadOption{WithLookupEnv(noEnv)}, opts...)...)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

func TestDefaults(t *testing.T) {
	f := parse(t, `
plugins:
  billing: {command: plugin.sh}
pipelines:
  - name: p
    source: {topic: in, schema: Transaction}
    stages: [{filter: "true"}, {plugin: billing}]
    branches: [{when: "true", to: out}]
`)
	p := f.Pipelines[0]
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"Version", f.Version, 1},
		{"SchemasDir", f.SchemasDir, abs("schemas")},
		{"Kafka", f.Kafka, Kafka{Brokers: []string{"embedded"}, EmbeddedListen: "127.0.0.1:9092",
			ExactlyOnce: true, CreateTopics: true, Partitions: 8, ReplicationFactor: 1, ClientID: "billing", Compression: "snappy"}},
		{"HTTP", f.HTTP, HTTP{Listen: "127.0.0.1:8080", Advertise: "http://127.0.0.1:8080"}},
		{"Database", f.Database, Database{DSN: "embedded"}},
		{"Email", f.Email, Email{From: "billing@localhost"}},
		{"Plugin.Command", f.Plugins["billing"].Command, abs("testdata/plugin.sh")},
		{"Plugin.Timeout", f.Plugins["billing"].Timeout, 30 * time.Second},
		{"Plugin.Name", f.Plugins["billing"].Name, "billing"},
		{"MaxBatch", p.Source.MaxBatch, 500},
		{"MaxWait", p.Source.MaxWait, 5 * time.Millisecond},
		{"stage names", []string{p.Stages[0].Name, p.Stages[1].Name}, []string{"filter-0", "billing-1"}},
		{"branch name", p.Branches[0].Name, "out"},
		{"Errors", p.Errors, ErrorPolicy{Retries: 3, Backoff: 100 * time.Millisecond, DLQ: "in.dlq"}},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestExplicitZerosAreKept(t *testing.T) {
	f := parse(t, `
kafka: {exactly_once: false, create_topics: false}
pipelines:
  - name: p
    source: {topic: in, schema: Transaction, max_wait: 0s}
    errors: {retries: 0, backoff: 0s}
`)
	p := f.Pipelines[0]
	if f.Kafka.ExactlyOnce || f.Kafka.CreateTopics {
		t.Errorf("ExactlyOnce, CreateTopics: got %v, %v, want false, false", f.Kafka.ExactlyOnce, f.Kafka.CreateTopics)
	}
	if p.Source.MaxWait != 0 || p.Errors.Retries != 0 || p.Errors.Backoff != 0 {
		t.Errorf("MaxWait, Retries, Backoff: got %v, %v, %v, want zeros", p.Source.MaxWait, p.Errors.Retries, p.Errors.Backoff)
	}
}

func TestInterpolatedValuesTakeTheirType(t *testing.T) {
	f := parse(t, `
kafka:
  partitions: "${P:-16}"
  exactly_once: ${EO:-false}
plugins:
  p:
    config:
      n: ${N:-3}
      s: "${N:-3}"
      b: ${B:-true}
      literal: $$HOME
pipelines: [{name: p, source: {topic: in, schema: Transaction}}]
`)
	if f.Kafka.Partitions != 16 || f.Kafka.ExactlyOnce {
		t.Errorf("Partitions, ExactlyOnce: got %d, %v, want 16, false", f.Kafka.Partitions, f.Kafka.ExactlyOnce)
	}
	got := f.Plugins["p"].Config
	want := map[string]any{"n": 3, "s": "3", "b": true, "literal": "$HOME"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Config: got %#v, want %#v", got, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/no-such-file.yaml")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v, want an error wrapping fs.ErrNotExist", err)
	}
}

func TestLoadUsesOSEnvByDefault(t *testing.T) {
	t.Setenv("PIPELINE_TEST_TOPIC", "from-env")
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	text := "pipelines: [{name: p, source: {topic: '${PIPELINE_TEST_TOPIC}', schema: T}}]\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Pipelines[0].Source.Topic; got != "from-env" {
		t.Errorf("got %q, want %q", got, "from-env")
	}
}

// An alias bomb stops Load with an error instead of a long walk.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("topics: {x: &stage {plugin: p, outputs: {o: t}}}\n")
	b.WriteString("plugins: {x: &pipeline {}}\n")
	b.WriteString("pipelines:\n  - &p {name: p, source: {topic: in, schema: T}, stages: [")
	b.WriteString(strings.Repeat("*stage, ", 2000))
	b.WriteString("]}\n  -")
	b.WriteString(strings.Repeat(" *p\n  -", 2000))
	b.WriteString(" *p\n")
	_, err := Parse("bomb.yaml", []byte(b.String()), WithLookupEnv(noEnv))
	if err == nil || !strings.Contains(err.Error(), "too many aliases") {
		t.Errorf("got %.300v, want too many aliases", err)
	}
}
