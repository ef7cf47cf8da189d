//go:build linux

package pollnet

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// isReading reports whether a Read on c is under way.
func isReading(c *conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reading
}

// readingWithin reports whether a Read (or a WaitReadable) on c is under
// way, or starts within d. Unlike waitReading, it can be called from any
// goroutine.
func readingWithin(c *conn, d time.Duration) bool {
	for start := time.Now(); !isReading(c); time.Sleep(time.Millisecond) {
		if time.Since(start) > d {
			return false
		}
	}
	return true
}

// waitReading waits until a Read on c is under way, failing the test
// after hangTimeout.
func waitReading(t *testing.T, c *conn) {
	t.Helper()
	if !readingWithin(c, hangTimeout) {
		t.Fatal("Read did not start")
	}
}

func TestWatchAndUnwatch(t *testing.T) {
	if notices == nil {
		t.Fatal("no epoll set: the kernel refused epoll_create1")
	}
	c, _ := newPolling(t)
	notices.mu.Lock()
	fd, watched := c.fd, notices.conns[c.fd]
	notices.mu.Unlock()
	if fd < 0 || watched != c {
		t.Fatalf("after Wrap: fd %d, set holds %p, want the connection %p", fd, watched, c)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	notices.mu.Lock()
	defer notices.mu.Unlock()
	if c.fd != -1 || notices.conns[fd] != nil {
		t.Fatalf("after Close: fd %d, set holds %p for %d; want -1 and nothing", c.fd, notices.conns[fd], fd)
	}
}

func TestArrivedReportsEachArrivalOnce(t *testing.T) {
	c, peer := newPolling(t)
	arrived := func() bool { return slices.Contains(notices.arrived(), c) }
	if arrived() {
		t.Fatal("connection reported before any data was sent")
	}
	for _, msg := range []string{"first", "second"} {
		if _, err := peer.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		for start := time.Now(); !arrived(); time.Sleep(time.Millisecond) {
			if time.Since(start) > hangTimeout {
				t.Fatalf("%s: data never reported", msg)
			}
		}
		if arrived() {
			t.Fatalf("%s: one arrival reported twice", msg)
		}
		buf := make([]byte, 64)
		if n, err := c.Read(buf); err != nil || string(buf[:n]) != msg {
			t.Fatalf("Read = %q, %v; want %q", buf[:n], err, msg)
		}
	}
}

func TestKickDoesNotEndRead(t *testing.T) {
	tests := []struct {
		name     string
		idle     bool // let the connection stop polling first
		deadline bool // the caller set a read deadline
	}{
		{"polling", false, false},
		{"idle", true, false},
		{"idle, with deadline", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, peer := newPolling(t)
			if tt.idle {
				idle(c)
			}
			if tt.deadline {
				if err := c.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
			ch := startRead(c)
			waitReading(t, c)
			c.kick()
			select {
			case r := <-ch:
				t.Fatalf("kick ended Read with no data: %q, %v", r.data, r.err)
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := peer.Write([]byte("after kick")); err != nil {
				t.Fatal(err)
			}
			if r := await(t, ch, "Read after kick"); r.err != nil || r.data != "after kick" {
				t.Fatalf("Read = %q, %v; want %q, nil", r.data, r.err, "after kick")
			}
		})
	}
}

// TestBusyGoroutineWakesReader checks that a goroutine busy calling Yield,
// or Handoff, in a loop wakes the reader of a connection whose data
// arrived, with one processor: the runtime does not consult its network
// poller while that goroutine is runnable (only its monitor does, every 10
// ms), so the reader of an idle connection learns of its data from them.
// Handoff, unlike Yield, leaves the connection's OnArrival function alone
// and yields the processor to the reader.
func TestBusyGoroutineWakesReader(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func()
	}{
		{"Yield", Yield},
		{"Handoff", Handoff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			c, peer := newPolling(t)
			idle(c)
			var arrivals atomic.Int32
			if tc.name == "Handoff" {
				// Claims every arrival: were it run, the read would never end.
				OnArrival(c, func() bool { arrivals.Add(1); return true })
			}
			ch := startRead(c)
			waitReading(t, c)
			before := kicks.Load()

			stop := make(chan struct{})
			busy := make(chan struct{})
			go func() {
				defer close(busy)
				for {
					select {
					case <-stop:
						return
					default:
						tc.call()
					}
				}
			}()
			if _, err := peer.Write([]byte("query")); err != nil {
				t.Fatal(err)
			}
			r := await(t, ch, "Read while busy")
			close(stop)
			<-busy
			if r.err != nil || r.data != "query" {
				t.Fatalf("Read = %q, %v; want %q, nil", r.data, r.err, "query")
			}
			if n := arrivals.Load(); n != 0 {
				t.Fatalf("%s ran the OnArrival function %d times; want 0", tc.name, n)
			}
			if kicks.Load() == before {
				t.Fatalf("the reader got its data without %s waking it", tc.name)
			}
		})
	}
}

// startWait calls c.waitReadable in a new goroutine and returns a channel
// that receives what it returned.
func startWait(c *conn) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- c.waitReadable() }()
	return ch
}

// TestKickBetweenWaitsIsNotLost checks that a kick ends a WaitReadable with
// no data to read, wherever it lands: before the wait starts, while it
// waits on the network poller, or while it polls, between two of its short
// waits as much as during one.
func TestKickBetweenWaitsIsNotLost(t *testing.T) {
	tests := []struct {
		name          string
		idle          bool // let the connection stop polling first
		before        bool // kick before the wait starts, not during it
		conns, rounds int
	}{
		{"before the wait, polling", false, true, 1, 1},
		{"before the wait, idle", true, true, 1, 1},
		{"during an idle wait", true, false, 1, 1},
		// Kicks at random moments of the poll cycle, on connections
		// kept polling: some land after one short wait has ended and
		// before the next has started.
		{"during a polling wait, at random moments", false, false, 20, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var wg sync.WaitGroup
			for k := range tt.conns {
				c, _ := newPolling(t)
				if tt.idle {
					idle(c)
				}
				wg.Go(func() {
					for round := range tt.rounds {
						if !tt.idle {
							c.last.Store(time.Now().UnixNano()) // keep it polling
						}
						if tt.before {
							c.kick()
						}
						ch := startWait(c)
						if !tt.before {
							if !readingWithin(c, hangTimeout) {
								t.Errorf("conn %d round %d: WaitReadable did not start", k, round)
								return
							}
							switch {
							case tt.rounds > 1:
								time.Sleep(rand.N(3 * Interval))
							case tt.idle:
								time.Sleep(50 * time.Millisecond) // let the wait block on the poller
							}
							c.kick()
						}
						select {
						case err := <-ch:
							if err != nil {
								t.Errorf("conn %d round %d: WaitReadable = %v, want nil", k, round, err)
								return
							}
						case <-time.After(hangTimeout):
							t.Errorf("conn %d round %d: the kick did not end WaitReadable within %v", k, round, hangTimeout)
							c.SetReadDeadline(aLongTimeAgo) // end it
							<-ch
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

// BenchmarkPoll measures Poll with a polling connection registered and no
// data arriving: most calls only read the clock; one in askEvery asks the
// kernel. "ask" makes every call ask, for the cost of that system call.
func BenchmarkPoll(b *testing.B) {
	newPolling(b)
	b.Run("as called", func(b *testing.B) {
		for b.Loop() {
			Poll()
		}
	})
	b.Run("ask", func(b *testing.B) {
		for b.Loop() {
			notices.arrived()
		}
	})
}
