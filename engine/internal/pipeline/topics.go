package pipeline

import (
	"maps"
	"slices"
)

// TopicSpec is a topic the file uses, with the settings to create it with.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Compact           bool
	// KeepRecords is set on the source of a table restored from its
	// source (changelog: source): the topic is created with
	// retention.ms=-1, and an existing one with another retention is
	// reported.
	KeepRecords bool
}

// TopicSpecs returns every topic the pipelines use (sources, branch sinks,
// stage outputs and dead-letter queues) and every topic declared under
// topics:, sorted by name, each once. Partitions and compaction come from
// the topic's entry under topics:, partitions falling back to
// Kafka.Partitions; the replication factor is Kafka.ReplicationFactor.
// Internal topics (changelogs, repartition topics) are not included.
//
// (It is not named Topics: that is the field holding the overrides.)
func (f *File) TopicSpecs() []TopicSpec {
	names := make(map[string]bool)
	add := func(name string) {
		if name != "" {
			names[name] = true
		}
	}
	for name := range f.Topics {
		add(name)
	}
	for _, p := range f.Pipelines {
		add(p.Source.Topic)
		add(p.Errors.DLQ)
		for _, s := range p.Stages {
			for _, t := range s.Outputs {
				add(t)
			}
		}
		for _, b := range p.Branches {
			add(b.To)
		}
	}
	keep := map[string]bool{}
	for _, p := range f.Pipelines {
		for _, t := range p.Tables {
			if t.Changelog == ChangelogSource {
				keep[p.Source.Topic] = true
			}
		}
	}
	specs := make([]TopicSpec, 0, len(names))
	for _, name := range slices.Sorted(maps.Keys(names)) {
		spec := f.topicSpec(name)
		spec.KeepRecords = keep[name]
		specs = append(specs, spec)
	}
	return append(specs, f.internalTopics()...)
}

func (f *File) topicSpec(name string) TopicSpec {
	t := f.Topics[name]
	spec := TopicSpec{
		Name:              name,
		Partitions:        f.Kafka.Partitions,
		ReplicationFactor: f.Kafka.ReplicationFactor,
		Compact:           t.Compact,
	}
	if t.Partitions > 0 {
		spec.Partitions = t.Partitions
	}
	return spec
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// internalTopics returns the tables' changelog (compacted) and repartition
// topics. A changelog has its input's partition count: partition p of a
// table is kept from partition p of its input.
func (f *File) internalTopics() []TopicSpec {
	var specs []TopicSpec
	for _, p := range f.Pipelines {
		src := f.topicSpec(p.Source.Topic)
		for _, t := range p.Tables {
			if t.Changelog == ChangelogSource {
				continue // restored from the source topic
			}
			cl := src
			if t.Kind != "latest" && t.GroupBy != "" {
				rp := f.topicSpec(f.ApplicationID + "-" + t.Name + "-repartition")
				specs = append(specs, rp)
				cl = rp
			}
			cl.Name = f.ApplicationID + "-" + t.Name + "-changelog"
			cl.Compact = true
			specs = append(specs, cl)
		}
	}
	return specs
}
