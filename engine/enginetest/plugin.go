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
