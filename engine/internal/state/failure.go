package state

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble"
)

// exit ends the process; tests replace it.
var exit = os.Exit

// fatalStatus is the exit status of a store that cannot go on.
const fatalStatus = 2

// commit commits b. The store writes no log, so a commit only fills a
// memtable; a panic in it (Pebble panics when a log it writes fails, and
// leaves its commit pipeline locked) is fatal all the same.
func (s *Store) commit(b *pebble.Batch) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.fatal(fmt.Sprint(r))
			err = fmt.Errorf("state: %s: %v", s.dir, r) // when exit returns, in tests
		}
	}()
	return b.Commit(pebble.NoSync)
}

// fatal logs that the store cannot go on, and why, and ends the process:
// nothing is lost (see the package documentation), and a restart once the
// disk is fixed goes on where the changelogs say.
func (s *Store) fatal(cause string) {
	s.log.Error("state: the local state store cannot be written; stopping. Free space (or fix the disk) under its directory and restart: "+
		"what was committed is in Kafka (the changelogs, or the source topics), and the tables are restored from it",
		"dir", s.dir, "err", cause)
	exit(fatalStatus)
}

// diskFailed reports whether err says the disk (or the user's quota) has
// no room left, or cannot be written at all: Pebble would retry the flush
// without end, and writes stall behind it.
func diskFailed(err error) bool {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.EROFS} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// backgroundEvery is how often, at most, a background error is logged:
// Pebble retries a failed flush or compaction at once, again and again.
const backgroundEvery = 10 * time.Second

// backgroundErrors counts Pebble's background errors between two logged.
type backgroundErrors struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// events returns the Pebble events s reports. A background error (a
// flush or compaction that failed) is logged, at most every
// backgroundEvery with how many were not; one from a full or failing disk
// is fatal, since the writes stall until a flush succeeds and Pebble
// retries it without pause meanwhile, a core busy and nothing said. Write
// stalls are logged.
func (s *Store) events() *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			if diskFailed(err) {
				s.fatal(err.Error())
				return
			}
			s.bg.mu.Lock()
			defer s.bg.mu.Unlock()
			if time.Since(s.bg.last) < backgroundEvery {
				s.bg.suppressed++
				return
			}
			s.log.Error("state: background error; retrying", "dir", s.dir, "err", err, "errors_not_logged", s.bg.suppressed)
			s.bg.last, s.bg.suppressed = time.Now(), 0
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			s.log.Warn("state: writes stalled", "dir", s.dir, "reason", info.Reason)
		},
		WriteStallEnd: func() {
			s.log.Info("state: writes resumed", "dir", s.dir)
		},
	}
}

// quietLogger drops Pebble's informational logs and logs its errors; a
// fatal one ends the process.
type quietLogger struct{ s *Store }

func (quietLogger) Infof(string, ...any) {}

func (l quietLogger) Errorf(format string, args ...any) {
	l.s.log.Error("state: pebble: "+fmt.Sprintf(format, args...), "dir", l.s.dir)
}

func (l quietLogger) Fatalf(format string, args ...any) {
	l.s.fatal(fmt.Sprintf(format, args...))
}
