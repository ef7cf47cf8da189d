package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/billing-engine/billing/engine/internal/pipeline"
)

// Env describes the machine and the code a run measured.
type Env struct {
	// Go is the Go version, OS and architecture.
	Go string
	// CPU is the first "model name" of /proc/cpuinfo and Cores
	// runtime.NumCPU.
	CPU   string
	Cores int
	// Memory is MemTotal of /proc/meminfo.
	Memory string
	// Commit is the short commit of repoRoot's HEAD, with a note when the
	// tracked files have changes.
	Commit string
}

// Environment describes this machine and the commit of the repository at
// repoRoot; what it cannot read says "unknown". It only reads: git runs
// with --no-optional-locks, so that the index is never written.
func Environment(repoRoot string) Env {
	e := Env{Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH, Cores: runtime.NumCPU(),
		CPU: "unknown", Memory: "unknown", Commit: "unknown"}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				e.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		if kib, err := kiBField(data, "MemTotal:"); err == nil {
			e.Memory = fmt.Sprintf("%.1f GiB", float64(kib)/(1<<20))
		}
	}
	git := func(args ...string) ([]byte, error) {
		return exec.Command("git", append([]string{"--no-optional-locks", "-C", repoRoot}, args...)...).Output()
	}
	if out, err := git("rev-parse", "--short", "HEAD"); err == nil {
		e.Commit = strings.TrimSpace(string(out))
		if st, err := git("status", "--porcelain", "--untracked-files=no"); err == nil && len(bytes.TrimSpace(st)) > 0 {
			e.Commit += " with uncommitted changes"
		}
	}
	return e
}

// Batching lists the batching of each pipeline of a pipeline file, as
// "name max_batch 500, max_wait 5ms", separated by "; ", or "every
// pipeline (6) max_batch 500, max_wait 5ms" when they are all the same,
// with the engine's defaults where the file sets none.
func Batching(pipelineFile string) (string, error) {
	data, err := os.ReadFile(pipelineFile)
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	var f struct {
		Pipelines []struct {
			Name   string
			Source struct {
				MaxBatch int    `yaml:"max_batch"`
				MaxWait  string `yaml:"max_wait"`
			}
		}
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		return "", fmt.Errorf("bench: %s: %w", pipelineFile, err)
	}
	parts := make([]string, 0, len(f.Pipelines))
	same := true
	for i, p := range f.Pipelines {
		mb, mw := p.Source.MaxBatch, p.Source.MaxWait
		if mb == 0 {
			mb = pipeline.DefaultMaxBatch
		}
		if mw == "" {
			mw = pipeline.DefaultMaxWait.String()
		}
		parts = append(parts, fmt.Sprintf("%s max_batch %d, max_wait %s", p.Name, mb, mw))
		same = same && strings.TrimPrefix(parts[i], p.Name) == strings.TrimPrefix(parts[0], f.Pipelines[0].Name)
	}
	if same && len(parts) > 1 {
		return fmt.Sprintf("every pipeline (%d)%s", len(parts), strings.TrimPrefix(parts[0], f.Pipelines[0].Name)), nil
	}
	return strings.Join(parts, "; "), nil
}
