package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/billing-engine/billing/engine/avro"
)

func TestValidFilesValidate(t *testing.T) {
	files, _ := filepath.Glob("testdata/graph/*.yaml")
	for _, path := range append(files, billingFile) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			if got := problems(t, path); got != "" {
				t.Errorf("got problems\n%s\nwant none", got)
			}
		})
	}
}

func TestValidateBuiltinPlugins(t *testing.T) {
	text := `
schemas: schemas
pipelines:
  - name: p
    source: {topic: in, schema: Transaction}
    stages: [{plugin: billing}, {plugin: branch}]
`
	f := parse(t, text)
	err := Validate(f, ValidateOptions{})
	if err == nil || !strings.Contains(err.Error(), `unknown plugin "billing"`) {
		t.Errorf("without Builtin: got %v, want unknown plugin \"billing\"", err)
	}
	if err := Validate(f, ValidateOptions{Builtin: map[string]bool{"billing": true}}); err != nil {
		t.Errorf("with Builtin billing: got %v, want nil", err)
	}
}

func TestValidatePluginChecksum(t *testing.T) {
	data, err := os.ReadFile("testdata/plugin.sh")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	for _, c := range []struct {
		sha256, want string
	}{
		{hex.EncodeToString(sum[:]), ""},
		{strings.ToUpper(hex.EncodeToString(sum[:])), ""},
		{strings.Repeat("ab", 32), "sha256: command plugin.sh has SHA-256 " + hex.EncodeToString(sum[:])},
	} {
		f := parse(t, `
schemas: schemas
plugins: {billing: {command: plugin.sh, sha256: "`+c.sha256+`"}}
pipelines: [{name: p, source: {topic: in, schema: Transaction}, stages: [{plugin: billing}]}]
`)
		err := Validate(f, ValidateOptions{})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("sha256 %s: got %v, want nil", c.sha256, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("sha256 %s: got %v, want %q", c.sha256, err, c.want)
		}
	}
}

func TestValidateWithRegistry(t *testing.T) {
	reg := avro.NewRegistry()
	if _, err := reg.Add(`{"type":"record","name":"Event","fields":[{"name":"kind","type":"string"}]}`, true); err != nil {
		t.Fatal(err)
	}
	f := parse(t, `
schemas: no-such-dir
pipelines:
  - name: p
    source: {topic: in, schema: Event}
    branches: [{when: 'kind == "a"', to: a}, {when: 'status == "b"', to: b}]
`)
	err := Validate(f, ValidateOptions{Schemas: reg})
	want := `testdata/test.yaml:6:54: pipeline "p" branch "b": when: unknown field "status"`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// A File built in code, without positions, is validated too; its
// messages have no line numbers.
func TestValidateBuiltFile(t *testing.T) {
	f := &File{
		Version:       1,
		ApplicationID: "app",
		SchemasDir:    "testdata/schemas",
		Kafka:         Kafka{Brokers: []string{"k:9092"}, Partitions: 1, ReplicationFactor: 1},
		HTTP:          HTTP{Listen: "127.0.0.1:80", Advertise: "http://127.0.0.1:80"},
		Email:         Email{From: "a@b"},
		Pipelines: []Pipeline{{
			Name:   "p",
			Source: Source{Topic: "in", Schema: "Transaction", MaxBatch: 1},
			Branches: []Branch{
				{Name: "a", When: "amount_minor >", To: "a", WhenPos: Pos{10, 20}},
				{Name: "b", When: "true", To: "b"},
			},
		}},
	}
	want := "10:34: pipeline \"p\" branch \"a\": when: unexpected end of expression"
	if err := Validate(f, ValidateOptions{}); err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestTopicSpecs(t *testing.T) {
	f := parse(t, `
kafka: {partitions: 4, replication_factor: 3}
topics:
  in.dlq: {partitions: 1}
  audit: {compact: true}
pipelines:
  - name: p
    source: {topic: in, schema: Transaction}
    stages: [{plugin: x, outputs: {o: side}}]
    branches: [{when: "true", to: out}, {default: true, to: in.dlq}]
  - name: q
    source: {topic: out, schema: Transaction}
    errors: {dlq: dead}
    tables: [{name: last, kind: latest, changelog: source}]
`)
	got := f.TopicSpecs()
	want := []TopicSpec{
		{Name: "audit", Partitions: 4, ReplicationFactor: 3, Compact: true},
		{Name: "dead", Partitions: 4, ReplicationFactor: 3},
		{Name: "in", Partitions: 4, ReplicationFactor: 3},
		{Name: "in.dlq", Partitions: 1, ReplicationFactor: 3},
		// A table is restored from it: created keeping its records.
		{Name: "out", Partitions: 4, ReplicationFactor: 3, KeepRecords: true},
		{Name: "side", Partitions: 4, ReplicationFactor: 3},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
