package engine

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// instanceFile holds the instance's id under the data directory; the
// process holds an exclusive lock on it while it runs.
const instanceFile = "instance-id"

// claimDataDir locks the data directory for this process and returns the
// instance id kept in it, creating both on first use. The id names the
// instance's transactional producers, as Kafka Streams' process id in its
// state directory does: a process restarted on the same data directory
// takes over its predecessor's transactional ids, so the broker aborts
// what the predecessor left open at once instead of after the
// transaction timeout, and read_committed consumers do not wait on it.
// The lock keeps a second process off the same directory (its embedded
// broker log, state stores and transactional ids); it goes with the
// process, however that ends. release unlocks it.
func claimDataDir(dir string) (id string, release func() error, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("engine: data directory: %w", err)
	}
	path := filepath.Join(dir, instanceFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", nil, fmt.Errorf("engine: data directory: %w", err)
	}
	if err := lockFile(f); err != nil {
		_ = f.Close()
		if errors.Is(err, errLocked) {
			return "", nil, fmt.Errorf("engine: data directory %s is in use by another engine process (each instance needs its own data_dir)", dir)
		}
		return "", nil, fmt.Errorf("engine: lock %s: %w", path, err)
	}
	release = f.Close // closing the file drops the lock
	b, err := io.ReadAll(f)
	if err != nil {
		_ = release()
		return "", nil, fmt.Errorf("engine: read %s: %w", path, err)
	}
	id = strings.TrimSpace(string(b))
	if validInstanceID(id) {
		return id, release, nil
	}
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	id = hex.EncodeToString(raw[:])
	if err := f.Truncate(0); err != nil {
		_ = release()
		return "", nil, fmt.Errorf("engine: write %s: %w", path, err)
	}
	if _, err := f.WriteAt([]byte(id+"\n"), 0); err != nil {
		_ = release()
		return "", nil, fmt.Errorf("engine: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = release()
		return "", nil, fmt.Errorf("engine: write %s: %w", path, err)
	}
	return id, release, nil
}

// errLocked is lockFile's answer when another process holds the lock.
var errLocked = errors.New("locked by another process")

// validInstanceID reports whether id is one claimDataDir wrote: a torn or
// edited file gets a new id.
func validInstanceID(id string) bool {
	if len(id) != 12 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}
