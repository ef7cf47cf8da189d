package stream

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"github.com/billing-engine/billing/engine/enginetest"
	"github.com/billing-engine/billing/engine/internal/pipeline"
)

// TestEnsureTopicsKeepsTableSources creates the source of a table restored
// from its source with retention.ms=-1, and warns about an existing one
// that deletes records.
func TestEnsureTopicsKeepsTableSources(t *testing.T) {
	br := enginetest.StartBroker(t)
	cfg := enginetest.Config()
	admin, err := sarama.NewClusterAdmin([]string{br.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	week := "604800000"
	if err := admin.CreateTopic("existing", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": &week}}, false); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	specs := []pipeline.TopicSpec{
		{Name: "created", Partitions: 2, ReplicationFactor: 1, KeepRecords: true},
		{Name: "existing", Partitions: 1, ReplicationFactor: 1, KeepRecords: true},
		{Name: "plain", Partitions: 1, ReplicationFactor: 1},
	}
	if err := EnsureTopics(context.Background(), []string{br.Addr()}, cfg, specs, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	retention := func(topic string) string {
		entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"retention.ms"}})
		if err != nil {
			t.Fatalf("describe %s: %v", topic, err)
		}
		for _, e := range entries {
			if e.Name == "retention.ms" {
				return e.Value
			}
		}
		return ""
	}
	if got := retention("created"); got != "-1" {
		t.Errorf("created: retention.ms %q, want -1", got)
	}
	if got := retention("plain"); got == "-1" {
		t.Errorf("plain: retention.ms %q, want the broker's default", got)
	}
	if !strings.Contains(logs.String(), "topic=existing") || !strings.Contains(logs.String(), "retention.ms="+week) {
		t.Errorf("no warning about the existing topic's retention in the log:\n%s", logs.String())
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") && !strings.Contains(line, "topic=existing") {
			t.Errorf("a warning about another topic: %s", line)
		}
	}
}
