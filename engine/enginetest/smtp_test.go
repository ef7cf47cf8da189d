package enginetest

import (
	"crypto/tls"
	"errors"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// sendMail sends one message with net/smtp, with STARTTLS and AUTH when
// offered and user is set.
func sendMail(addr, user, pass, from, to, body string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: "127.0.0.1", InsecureSkipVerify: true}); err != nil { //nolint:gosec // the test server's certificate
			return err
		}
	}
	if user != "" {
		if err := c.Auth(smtp.PlainAuth("", user, pass, "127.0.0.1")); err != nil {
			return err
		}
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

const testBody = "From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\nMessage-ID: <1@example.com>\r\n\r\nhello\r\n"

func TestSMTPServer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      []SMTPOption
		user      string
		wantTLS   bool
		wantError int // SMTP reply code, 0 for none
	}{
		{name: "plain"},
		{name: "starttls", opts: []SMTPOption{WithSTARTTLS()}, wantTLS: true},
		{name: "auth", opts: []SMTPOption{WithAuth("u", "p")}, user: "u"},
		{name: "starttls and auth", opts: []SMTPOption{WithSTARTTLS(), WithAuth("u", "p")}, user: "u", wantTLS: true},
		{name: "auth required", opts: []SMTPOption{WithAuth("u", "p")}, wantError: 530},
		{name: "recipient rejected", opts: []SMTPOption{WithRejectRecipients("B@example.com")}, wantError: 550},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := StartSMTP(t, tc.opts...)
			err := sendMail(s.Addr(), tc.user, "p", "a@example.com", "b@example.com", testBody)
			if tc.wantError != 0 {
				var tp *textproto.Error
				if !errors.As(err, &tp) || tp.Code != tc.wantError {
					t.Fatalf("got %v, want reply %d", err, tc.wantError)
				}
				if n := s.Count(); n != 0 {
					t.Errorf("got %d messages, want none", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s.WaitFor(t, 1, 5*time.Second)
			m := s.Messages()[0]
			if m.From != "a@example.com" || len(m.To) != 1 || m.To[0] != "b@example.com" {
				t.Errorf("envelope: got %s -> %v, want a@example.com -> [b@example.com]", m.From, m.To)
			}
			if m.TLS != tc.wantTLS || m.User != tc.user {
				t.Errorf("session: got TLS %v user %q, want %v %q", m.TLS, m.User, tc.wantTLS, tc.user)
			}
			if m.MessageID != "<1@example.com>" || m.Header.Get("Subject") != "hi" || !strings.HasSuffix(string(m.Data), "\r\n\r\nhello\r\n") {
				t.Errorf("message: got id %q subject %q data %q", m.MessageID, m.Header.Get("Subject"), m.Data)
			}
		})
	}
}

func TestSMTPServerStopStart(t *testing.T) {
	s := StartSMTP(t)
	addr := s.Addr()
	if err := sendMail(addr, "", "", "a@example.com", "b@example.com", testBody); err != nil {
		t.Fatal(err)
	}
	// An idle session is cut when the server stops.
	idle, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	s.Stop()
	if err := idle.Noop(); err == nil {
		t.Error("idle session: NOOP after Stop succeeded, want an error")
	}
	if err := sendMail(addr, "", "", "a@example.com", "b@example.com", testBody); err == nil {
		t.Fatal("send while stopped: got no error")
	}
	s.Start()
	if got := s.Addr(); got != addr {
		t.Errorf("address after Start: got %s, want %s", got, addr)
	}
	if err := sendMail(addr, "", "", "a@example.com", "b@example.com", testBody); err != nil {
		t.Fatalf("send after Start: %v", err)
	}
	if n := s.Count(); n != 2 {
		t.Errorf("got %d messages, want 2", n)
	}
}

func TestSMTPServerStopAfter(t *testing.T) {
	s := StartSMTP(t)
	s.StopAfter(2)
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func() error {
		if err := c.Mail("a@example.com"); err != nil {
			return err
		}
		if err := c.Rcpt("b@example.com"); err != nil {
			return err
		}
		w, err := c.Data()
		if err != nil {
			return err
		}
		if _, err := w.Write([]byte(testBody)); err != nil {
			return err
		}
		return w.Close()
	}
	for i := range 2 {
		if err := send(); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if err := send(); err == nil {
		t.Fatal("third message: got no error, want the server stopping")
	}
	if n := s.Count(); n != 2 {
		t.Errorf("got %d messages, want 2", n)
	}
	// Stop runs in the background: new sessions are refused soon.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c2, err := smtp.Dial(s.Addr())
		if err != nil {
			break
		}
		c2.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still takes sessions after its limit")
		}
	}
	s.Start()
	if err := sendMail(s.Addr(), "", "", "a@example.com", "b@example.com", testBody); err != nil {
		t.Fatalf("after Start: %v", err)
	}
}
