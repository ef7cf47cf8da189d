package engine_test

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/billing-engine/billing/engine/enginetest"
)

// pipelineVar, in a test's settings, names the pipeline file runEngine and
// startChild run instead of the stream part of pipelines/billing.yaml.
const pipelineVar = "TEST_PIPELINE_FILE"

// billingPipelines are the pipelines of pipelines/billing.yaml that bill
// and email, and the plugins they run.
var (
	billingPipelines = []string{"billing", "credits", "notify", "notify-invoices"}
	billingPlugins   = []string{"billing", "email"}
)

var (
	streamOnce sync.Once
	streamFile string
	streamErr  error
)

// pipelineFile returns the pipeline file a test runs: vars[pipelineVar],
// or pipelines/billing.yaml without its billing pipelines (so that tests
// of the stream, the tables and the store see only what the processor and
// the store pipelines do), written once per test binary.
func pipelineFile(t testing.TB, vars map[string]string) string {
	t.Helper()
	if p := vars[pipelineVar]; p != "" {
		return p
	}
	root := enginetest.RepoRoot(t)
	streamOnce.Do(func() { streamFile, streamErr = writeStreamPipeline(root) })
	if streamErr != nil {
		t.Fatal(streamErr)
	}
	return streamFile
}

// billingVars points vars at the whole of pipelines/billing.yaml, with the
// plugins built for the test binary.
func billingVars(t testing.TB, vars map[string]string) map[string]string {
	t.Helper()
	vars[pipelineVar] = filepath.Join(enginetest.RepoRoot(t), "pipelines", "billing.yaml")
	vars["BILLING_PLUGIN_DIR"] = enginetest.BuildBillingPlugins(t)
	return vars
}

func writeStreamPipeline(root string) (string, error) {
	src, err := os.ReadFile(filepath.Join(root, "pipelines", "billing.yaml"))
	if err != nil {
		return "", err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return "", err
	}
	top := doc.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		key, val := top.Content[i].Value, top.Content[i+1]
		switch key {
		case "schemas":
			val.Value = filepath.Join(root, "schemas")
		case "plugins":
			val.Content = dropPairs(val.Content, func(k *yaml.Node) bool { return slices.Contains(billingPlugins, k.Value) })
			if len(val.Content) == 0 {
				val.Style = yaml.FlowStyle
			}
		case "pipelines":
			val.Content = slices.DeleteFunc(val.Content, func(p *yaml.Node) bool {
				for j := 0; j+1 < len(p.Content); j += 2 {
					if p.Content[j].Value == "name" {
						return slices.Contains(billingPipelines, p.Content[j+1].Value)
					}
				}
				return false
			})
		}
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "engine-pipelines-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "stream.yaml")
	return path, os.WriteFile(path, out, 0o644)
}

// dropPairs removes the key/value pairs of a mapping's content whose key
// drop selects.
func dropPairs(content []*yaml.Node, drop func(*yaml.Node) bool) []*yaml.Node {
	var kept []*yaml.Node
	for i := 0; i+1 < len(content); i += 2 {
		if !drop(content[i]) {
			kept = append(kept, content[i], content[i+1])
		}
	}
	return kept
}
