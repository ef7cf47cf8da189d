package mailer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/smtp"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/enginetest"
)

// dotWriter returns what net/textproto's DotWriter writes for data.
func dotWriter(t testing.TB, data []byte) []byte {
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	w := textproto.NewWriter(bw).DotWriter()
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var dataCases = []string{
	"", ".", "..", "\r\n", "\n", "\r", ".\r\n", ".\n", "a", "a\r\n", "a\n", "a\r",
	"Subject: x\r\n\r\nbody\r\n.\r\n..\r\n.x\r\nend\r\n", "a\nb\n.c\n", ".\r\n.\r\n.", "x\r.y\r\n",
	"\r\r\n", "a\r\rb\n.", "\r.\r\n", "a\n\r\n.\r", "line\r\n.", "=\r\n.=2E\r\n",
}

func TestAppendDataIsDotWriter(t *testing.T) {
	for _, in := range dataCases {
		if got, want := appendData([]byte("prefix"), []byte(in)), append([]byte("prefix"), dotWriter(t, []byte(in))...); !bytes.Equal(got, want) {
			t.Errorf("appendData(%q): got %q, want %q", in, got, want)
		}
	}
}

func FuzzAppendData(f *testing.F) {
	for _, in := range dataCases {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if got, want := appendData(nil, in), dotWriter(t, in); !bytes.Equal(got, want) {
			t.Errorf("appendData(%q): got %q, want %q", in, got, want)
		}
	})
}

// countingConn counts the writes to a connection.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// testSender returns a sender to addr with one session in its pool,
// opened as dial does but over a countingConn, with pipelining as given
// (false: as for a server that does not offer it).
func testSender(t *testing.T, addr string, pipelining bool) (*smtpSender, *countingConn) {
	t.Helper()
	s := newSMTPSender(settings{smtpAddr: addr, smtpHost: "127.0.0.1", timeout: 5 * time.Second}, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = s.close() })
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cc := &countingConn{Conn: raw}
	sc := &smtpConn{raw: cc}
	if sc.c, err = smtp.NewClient(cc, s.host); err != nil {
		t.Fatal(err)
	}
	if err := s.open(sc); err != nil {
		t.Fatal(err)
	}
	if !sc.pipelining {
		t.Fatal("the server does not offer PIPELINING")
	}
	sc.pipelining = pipelining
	s.put(sc)
	return s, cc
}

func testMessages(to ...string) []*message {
	msgs := make([]*message, len(to))
	for i, addr := range to {
		id := fmt.Sprintf("<m%d@example.com>", i)
		msgs[i] = &message{from: "billing@example.com", to: addr, id: id,
			data: fmt.Appendf(nil, "Message-ID: %s\r\nSubject: m%d\r\n\r\n.line %d\r\n.\r\nend\r\n", id, i, i)}
	}
	return msgs
}

// outcome is what send reported for each message: "" for sent.
type outcome []string

func (o *outcome) done(i int, refused string) error {
	if i != len(*o) {
		return fmt.Errorf("done(%d) after %d messages", i, len(*o))
	}
	*o = append(*o, refused)
	return nil
}

func receivedIDs(srv *enginetest.SMTPServer) []string {
	var ids []string
	for _, m := range srv.Messages() {
		ids = append(ids, m.MessageID)
	}
	return ids
}

// TestSendModes: with pipelining and one command at a time, refusals come
// for their own messages, the others arrive whole, in order, once, and
// the session goes back to the pool. Pipelined, a batch of n messages
// takes n+2 writes: NOOP, the first MAIL FROM, RCPT TO and DATA, and each
// message's data with the next one's commands.
func TestSendModes(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			srv := enginetest.StartSMTP(t, enginetest.WithRejectRecipients("no@example.com"))
			s, cc := testSender(t, srv.Addr(), pipelining)
			msgs := testMessages("no@example.com", "a@example.com", "no@example.com", "no@example.com", "b@example.com", "c@example.com", "no@example.com")
			var got outcome
			if err := s.send(t.Context(), msgs, got.done); err != nil {
				t.Fatal(err)
			}
			for i, r := range got {
				if refused := msgs[i].to == "no@example.com"; refused != strings.Contains(r, "RCPT TO <no@example.com> refused: 550") {
					t.Errorf("message %d: got %q, refused %v", i, r, refused)
				}
			}
			if want := []string{"<m1@example.com>", "<m4@example.com>", "<m5@example.com>"}; !slices.Equal(receivedIDs(srv), want) {
				t.Errorf("got %v, want %v", receivedIDs(srv), want)
			}
			if data := string(srv.Messages()[0].Data); !strings.HasSuffix(data, "\r\n\r\n.line 1\r\n.\r\nend\r\n") {
				t.Errorf("got data %q", data)
			}
			if len(s.idle) != 1 {
				t.Fatalf("got %d idle sessions, want 1", len(s.idle))
			}

			msgs = testMessages("a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com")
			before := cc.writes.Load()
			got = nil
			if err := s.send(t.Context(), msgs, got.done); err != nil || len(got) != 5 {
				t.Fatalf("second batch: got %v, %v", got, err)
			}
			if n := cc.writes.Load() - before; pipelining && n != 7 {
				t.Errorf("got %d writes for 5 messages, want 7", n)
			}
			if n := srv.Count(); n != 8 {
				t.Errorf("got %d messages, want 8", n)
			}
		})
	}
}

// TestSendStopsBetweenMessages: an error from done, or a cancelled ctx,
// stops the batch after the message it was at. Pipelined, the next
// message's commands went with that message's data: the session, inside
// the next transaction, is then closed, not pooled, and the next message
// does not arrive.
func TestSendStopsBetweenMessages(t *testing.T) {
	errStop := errors.New("stop")
	for _, tc := range []struct {
		name       string
		pipelining bool
		at         int // the message whose done stops the batch
		cancel     bool
		wantIdle   int
	}{
		{"done fails, pipelined", true, 0, false, 0},
		{"done fails at the last, pipelined", true, 2, false, 1},
		{"cancelled, pipelined", true, 1, true, 0},
		{"done fails, one at a time", false, 0, false, 1},
		{"cancelled, one at a time", false, 1, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := enginetest.StartSMTP(t)
			s, _ := testSender(t, srv.Addr(), tc.pipelining)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			err := s.send(ctx, testMessages("a@example.com", "b@example.com", "c@example.com"), func(i int, _ string) error {
				if i != tc.at {
					return nil
				}
				if tc.cancel {
					cancel()
					return nil
				}
				return errStop
			})
			if want := error(errStop); tc.cancel && !errors.Is(err, context.Canceled) || !tc.cancel && !errors.Is(err, want) {
				t.Errorf("got %v", err)
			}
			if n := srv.Count(); n != tc.at+1 {
				t.Errorf("got %d messages, want %d", n, tc.at+1)
			}
			if len(s.idle) != tc.wantIdle {
				t.Errorf("got %d idle sessions, want %d", len(s.idle), tc.wantIdle)
			}
			srv.Stop() // waits for the sessions to end: nothing more arrives
			if n := srv.Count(); n != tc.at+1 {
				t.Errorf("after the session ended: got %d messages, want %d", n, tc.at+1)
			}
		})
	}
}

// scriptedServer is an SMTP server that answers DATA with 354 even when
// it refused every recipient, which RFC 2920 3.1 forbids. It refuses
// recipients that contain "refused", and messages that contain "spam"
// at their final "."; it keeps the data it accepts, and every command.
type scriptedServer struct {
	ln   net.Listener
	mu   sync.Mutex
	data []string
	cmds []string
}

func startScripted(t *testing.T) *scriptedServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptedServer{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { s.serve(c) })
		}
	})
	return s
}

func (s *scriptedServer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := textproto.NewConn(c)
	reply := func(lines string) { _ = tc.PrintfLine("%s", lines) }
	reply("220 scripted")
	for {
		line, err := tc.ReadLine()
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		s.mu.Lock()
		s.cmds = append(s.cmds, cmd)
		s.mu.Unlock()
		switch cmd {
		case "EHLO":
			reply("250-scripted\r\n250 PIPELINING")
		case "RCPT":
			if strings.Contains(line, "refused") {
				reply("550 5.1.1 no such user")
			} else {
				reply("250 ok")
			}
		case "DATA":
			reply("354 go ahead")
			lines, err := tc.ReadDotLines()
			if err != nil {
				return
			}
			if slices.Contains(lines, "spam") {
				reply("554 5.7.1 looks like spam")
				continue
			}
			s.mu.Lock()
			s.data = append(s.data, strings.Join(lines, "\n"))
			s.mu.Unlock()
			reply("250 queued")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("250 ok")
		}
	}
}

// TestDataAcceptedAfterRefusedRecipient: a server that answers DATA with
// 354 after refusing the recipient gets an empty message, the message is
// refused, and the session goes on.
func TestDataAcceptedAfterRefusedRecipient(t *testing.T) {
	srv := startScripted(t)
	s, _ := testSender(t, srv.ln.Addr().String(), true)
	var got outcome
	if err := s.send(t.Context(), testMessages("refused@example.com", "a@example.com"), got.done); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !strings.Contains(got[0], "RCPT TO <refused@example.com> refused: 550 5.1.1 no such user") || got[1] != "" {
		t.Errorf("got %q, want the first refused, the second sent", got)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if want := []string{"", "Message-ID: <m1@example.com>\nSubject: m1\n\n.line 1\n.\nend"}; !slices.Equal(srv.data, want) {
		t.Errorf("got data %q, want %q", srv.data, want)
	}
}

// TestRefusedAtFinalDot: a message refused at its final "." is refused
// alone, also when the next message's commands went with it: no RSET
// then, the transaction being over.
func TestRefusedAtFinalDot(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			srv := startScripted(t)
			s, _ := testSender(t, srv.ln.Addr().String(), pipelining)
			msgs := testMessages("a@example.com", "b@example.com", "c@example.com")
			msgs[1].data = append(msgs[1].data, "spam\r\n"...)
			var got outcome
			if err := s.send(t.Context(), msgs, got.done); err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 || got[0] != "" || !strings.Contains(got[1], "end of DATA <b@example.com> refused: 554 5.7.1 looks like spam") || got[2] != "" {
				t.Errorf("got %q, want the second refused", got)
			}
			if len(s.idle) != 1 {
				t.Errorf("got %d idle sessions, want 1", len(s.idle))
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if len(srv.data) != 2 || !strings.Contains(srv.data[0], "m0") || !strings.Contains(srv.data[1], "m2") {
				t.Errorf("got data %q, want m0 and m2", srv.data)
			}
			if want := !pipelining; slices.Contains(srv.cmds, "RSET") != want {
				t.Errorf("got commands %v, want RSET %v", srv.cmds, want)
			}
		})
	}
}
