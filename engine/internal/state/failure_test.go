package state

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/vfs"
)

// fullFS is an in-memory filesystem whose disk fills up (or fails) on
// demand: writes to the files whose names end in suffix fail with errno
// (ENOSPC when zero) while left > 0, each failure counting down.
type fullFS struct {
	vfs.FS
	suffix string
	errno  syscall.Errno
	left   atomic.Int64
}

func (fs *fullFS) Create(name string) (vfs.File, error) {
	f, err := fs.FS.Create(name)
	if err != nil || !strings.HasSuffix(name, fs.suffix) {
		return f, err
	}
	return &fullFile{File: f, fs: fs, name: name}, nil
}

type fullFile struct {
	vfs.File
	fs   *fullFS
	name string
}

func (f *fullFile) Write(p []byte) (int, error) {
	if f.fs.left.Load() > 0 {
		f.fs.left.Add(-1)
		errno := f.fs.errno
		if errno == 0 {
			errno = syscall.ENOSPC
		}
		return 0, &os.PathError{Op: "write", Path: f.name, Err: errno}
	}
	return f.File.Write(p)
}

// lockedBuffer is a log sink for Pebble's goroutines and the test's.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// openFull opens a store on fs, with its log in the returned buffer and
// exit replaced by a recorder of the statuses asked for.
func openFull(t *testing.T, fs vfs.FS) (*Store, *lockedBuffer, *atomic.Int64) {
	t.Helper()
	var exits atomic.Int64
	old := exit
	exit = func(code int) {
		if code != fatalStatus {
			t.Errorf("exit(%d), want %d", code, fatalStatus)
		}
		exits.Add(1)
	}
	t.Cleanup(func() { exit = old })
	logs := &lockedBuffer{}
	s, err := Open("db", WithLogger(slog.New(slog.NewTextHandler(logs, nil))), func(s *Store) { s.fs = fs })
	if err != nil {
		t.Fatal(err)
	}
	return s, logs, &exits
}

// TestFlushFailsIsFatal makes a flush fail for want of space, or with an
// I/O error: that is fatal, logged with the directory and the cause.
// (Pebble retries the flush; here the disk works again after a few tries,
// so that the store can close.)
func TestFlushFailsIsFatal(t *testing.T) {
	for _, tc := range []struct {
		errno syscall.Errno
		says  string
	}{
		{syscall.ENOSPC, "no space left on device"},
		{syscall.EIO, "input/output error"},
	} {
		t.Run(tc.says, func(t *testing.T) {
			fs := &fullFS{FS: vfs.NewMem(), suffix: ".sst", errno: tc.errno}
			s, logs, exits := openFull(t, fs)
			if err := s.Apply("t", 0, []Write{{Key: []byte("k"), Value: []byte("v")}}, &Position{Offset: 1}); err != nil {
				t.Fatal(err)
			}
			fs.left.Store(3)
			if err := s.db.Flush(); err != nil {
				t.Fatalf("flush after the disk worked again: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if exits.Load() == 0 {
				t.Fatalf("a flush failed with %v and nothing exited; log %q", tc.errno, logs.String())
			}
			for _, want := range []string{"level=ERROR", "dir=db", tc.says} {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("log %q: missing %q", logs.String(), want)
				}
			}
		})
	}
}
