package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The data directory keeps its instance id across runs, and only one
// process (here: one open claim) holds it at a time.
func TestClaimDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	id, release, err := claimDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !validInstanceID(id) {
		t.Fatalf("instance id %q", id)
	}
	if _, _, err := claimDataDir(dir); err == nil || !strings.Contains(err.Error(), "in use by another engine process") {
		t.Fatalf("second claim while the first holds it: %v", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	again, release, err := claimDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again != id {
		t.Errorf("instance id %q after a restart, want %q", again, id)
	}
	_ = release()

	// A file that does not hold an id gets a new one.
	for _, content := range []string{"", "0a0b", "not hex at all", id[:11] + "z\n"} {
		if err := os.WriteFile(filepath.Join(dir, instanceFile), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, release, err := claimDataDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		_ = release()
		if !validInstanceID(got) {
			t.Errorf("file %q: instance id %q", content, got)
		}
		b, _ := os.ReadFile(filepath.Join(dir, instanceFile))
		if strings.TrimSpace(string(b)) != got {
			t.Errorf("file %q: file now holds %q, the id is %q", content, b, got)
		}
	}
}
