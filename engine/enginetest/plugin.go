package enginetest

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"testing"
)

var (
	pluginsMu  sync.Mutex
	pluginDir  string
	pluginBins = map[string]*pluginBuild{}
)

type pluginBuild struct {
	once sync.Once
	path string
	err  error
}

// BuildPlugin builds the main package at pkg, a directory relative to the
// module root such as "plugins/branch" or
// "engine/internal/pluginhost/testdata/testplugin", once per test binary,
// and returns the binary's path. The binaries share a temporary directory
// that is left for the OS to clean, since several tests use them.
func BuildPlugin(t testing.TB, pkg string) string {
	t.Helper()
	pluginsMu.Lock()
	if pluginDir == "" {
		dir, err := os.MkdirTemp("", "engine-plugins-")
		if err != nil {
			pluginsMu.Unlock()
			t.Fatal(err)
		}
		pluginDir = dir
	}
	b, ok := pluginBins[pkg]
	if !ok {
		b = &pluginBuild{path: filepath.Join(pluginDir, fmt.Sprintf("%s-%d", path.Base(pkg), len(pluginBins)))}
		pluginBins[pkg] = b
	}
	pluginsMu.Unlock()
	b.once.Do(func() {
		cmd := exec.Command("go", "build", "-o", b.path, "./"+filepath.ToSlash(pkg))
		cmd.Dir = RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build ./%s: %w\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// BuildBillingPlugins builds the billing system's plugins (plugins/billing
// and plugins/email) once per test binary into one directory, under their
// own names, and returns the directory: the value of BILLING_PLUGIN_DIR
// for pipelines/billing.yaml.
func BuildBillingPlugins(t testing.TB) string {
	t.Helper()
	dir := ""
	for _, pkg := range []string{"plugins/billing", "plugins/email"} {
		bin := BuildPlugin(t, pkg)
		named := filepath.Join(filepath.Dir(bin), "billing-plugins", path.Base(pkg))
		namedMu.Lock()
		if _, err := os.Stat(named); err != nil {
			if err := os.MkdirAll(filepath.Dir(named), 0o755); err != nil {
				namedMu.Unlock()
				t.Fatal(err)
			}
			if err := os.Link(bin, named); err != nil {
				namedMu.Unlock()
				t.Fatal(err)
			}
		}
		namedMu.Unlock()
		dir = filepath.Dir(named)
	}
	return dir
}

var namedMu sync.Mutex
