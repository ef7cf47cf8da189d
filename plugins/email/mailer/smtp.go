package mailer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/billing-engine/billing/engine/sdk"
)

const (
	// maxIdleConns bounds the connections kept open between batches.
	maxIdleConns = 4
	// maxIdleTime is how long an idle connection is kept: less than the
	// few minutes after which servers commonly drop a quiet client.
	maxIdleTime = 30 * time.Second
)

// smtpSender sends over SMTP with net/smtp: one connection per batch,
// taken from a small pool of idle ones or dialled, with STARTTLS when the
// server offers it and AUTH PLAIN when it offers AUTH and a user is set.
// When the server offers PIPELINING (RFC 2920), a message costs one write
// and one wait for replies (see deliverPipelined); otherwise each command
// waits for its reply. It is safe for concurrent use: concurrent batches
// use different connections.
type smtpSender struct {
	addr, host string
	helo       string
	tls        *tls.Config
	user, pwd  string
	timeout    time.Duration
	log        *slog.Logger

	mu     sync.Mutex
	idle   []*smtpConn // most recently used last
	closed bool
	warned bool // the server offered no AUTH although a user is set
}

func newSMTPSender(s settings, log *slog.Logger) *smtpSender {
	return &smtpSender{
		addr: s.smtpAddr, host: s.smtpHost, helo: heloName(),
		tls:  &tls.Config{ServerName: s.smtpHost, RootCAs: s.roots, InsecureSkipVerify: s.insecure, MinVersion: tls.VersionTLS12}, //nolint:gosec // the user's choice, for test servers
		user: s.user, pwd: s.password, timeout: s.timeout, log: log,
	}
}

// heloName is the name this host gives in EHLO: its host name when that is
// a plausible domain, else "localhost".
func heloName() string {
	h, err := os.Hostname()
	if err != nil || h == "" || len(h) > 253 || strings.Trim(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != "" {
		return "localhost"
	}
	return h
}

func (s *smtpSender) String() string { return "SMTP server " + s.addr }

// smtpConn is one open SMTP session. It is between mail transactions
// unless pending is set.
type smtpConn struct {
	raw   net.Conn
	c     *smtp.Client
	since time.Time // when it went idle

	// pipelining tells whether the server offers PIPELINING (RFC 2920),
	// and mailExt what MAIL FROM then adds, as net/smtp's Client does.
	pipelining bool
	mailExt    string
	// pending tells whether the next message's MAIL FROM, RCPT TO and
	// DATA went with the last message's data and their replies are
	// still to be read: the session is then inside a transaction.
	pending bool
	// buf holds what goes in the next write, reused.
	buf []byte
}

// deadline bounds the next command and its reply.
func (sc *smtpConn) deadline(d time.Duration) { _ = sc.raw.SetDeadline(time.Now().Add(d)) }

// quit says goodbye politely, within d, and closes the connection.
func (sc *smtpConn) quit(d time.Duration) {
	sc.deadline(d)
	if err := sc.c.Quit(); err != nil {
		_ = sc.c.Close()
	}
}

func (s *smtpSender) send(ctx context.Context, msgs []*message, done func(int, string) error) error {
	if len(msgs) == 0 {
		return nil
	}
	sc, err := s.get(ctx)
	if err != nil {
		return err
	}
	// A cancelled ctx stops the batch between messages, never in the
	// middle of one: a message cut after the server took it would be
	// neither known as sent nor recorded, and would go twice. Each
	// command is bounded by the timeout setting instead.
	healthy := false
	defer func() {
		if healthy {
			s.put(sc)
			return
		}
		_ = sc.c.Close()
	}()
	// With pipelining, the next message's MAIL FROM, RCPT TO and DATA
	// may have gone with the last message's data (sc.pending): a batch
	// that stops then closes the connection before that message's data,
	// and the server drops the unfinished transaction (RFC 5321 4.1.1.4).
	for i, m := range msgs {
		if err := ctx.Err(); err != nil {
			healthy = !sc.pending // between transactions: the session can go on
			return fmt.Errorf("email: smtp %s: %d of %d messages not sent: %w", s.addr, len(msgs)-i, len(msgs), err)
		}
		var next *message
		if i+1 < len(msgs) {
			next = msgs[i+1]
		}
		refused, err := s.deliver(sc, m, next)
		if err != nil {
			return err
		}
		if err := done(i, refused); err != nil {
			healthy = !sc.pending // between transactions: the session can go on
			return err
		}
	}
	healthy = true
	return nil
}

// deliver runs the mail transaction of m, and may start next's (nil for
// none). It returns the server's reply when the server refused the
// recipient or the message for good (5xx), and an error when the session
// cannot go on.
func (s *smtpSender) deliver(sc *smtpConn, m, next *message) (refused string, err error) {
	if sc.pipelining {
		return s.deliverPipelined(sc, m, next)
	}
	return s.deliverEach(sc, m)
}

// deliverEach runs m's transaction one command at a time, for a server
// that does not offer PIPELINING.
func (s *smtpSender) deliverEach(sc *smtpConn, m *message) (refused string, err error) {
	sc.deadline(s.timeout)
	if err := sc.c.Mail(m.from); err != nil {
		return "", s.fail("MAIL FROM", err)
	}
	sc.deadline(s.timeout)
	if err := sc.c.Rcpt(m.to); err != nil {
		return s.refuse(sc, "RCPT TO", m, err)
	}
	sc.deadline(s.timeout)
	w, err := sc.c.Data()
	if err != nil {
		return s.refuse(sc, "DATA", m, err)
	}
	sc.deadline(s.timeout + time.Duration(len(m.data)/(64<<10))*time.Second)
	if _, err := w.Write(m.data); err != nil {
		return "", s.fail("DATA", err)
	}
	if err := w.Close(); err != nil {
		return s.refuse(sc, "end of DATA", m, err)
	}
	return "", nil
}

// deliverPipelined runs m's transaction with PIPELINING (RFC 2920): MAIL
// FROM, RCPT TO and DATA in one write (unless they went with the last
// message's data), their three replies, then the dot-stuffed message and
// its final "." in one write, with next's MAIL FROM, RCPT TO and DATA
// after them when next is not nil, and the reply to the ".". Each reply
// is read in turn, so a refusal is still about its own message.
func (s *smtpSender) deliverPipelined(sc *smtpConn, m, next *message) (refused string, err error) {
	if !sc.pending {
		if cmd := brokenEnvelope(m); cmd != "" {
			return "", s.fail(cmd, errLineBreak)
		}
		sc.buf = appendEnvelope(sc.buf[:0], sc.mailExt, m)
		sc.deadline(s.timeout)
		if err := sc.flush(); err != nil {
			return "", s.fail("MAIL FROM", err)
		}
	}
	sc.pending = false
	if refused, err := s.envelopeReplies(sc, m); refused != "" || err != nil {
		return refused, err
	}
	sc.buf = appendData(sc.buf[:0], m.data)
	if next != nil && brokenEnvelope(next) == "" {
		sc.buf = appendEnvelope(sc.buf, sc.mailExt, next)
		sc.pending = true
	}
	sc.deadline(s.timeout + time.Duration(len(m.data)/(64<<10))*time.Second)
	if err := sc.flush(); err != nil {
		return "", s.fail("DATA", err)
	}
	if _, _, err := sc.c.Text.ReadResponse(250); err != nil {
		return s.refuse(sc, "end of DATA", m, err)
	}
	return "", nil
}

// envelopeReplies reads the replies to m's MAIL FROM, RCPT TO and DATA.
// After a recipient refused for good, DATA's reply (a refusal, RFC 2920
// 3.1) is read too, and the transaction reset, so that the session goes
// on.
func (s *smtpSender) envelopeReplies(sc *smtpConn, m *message) (refused string, err error) {
	text := sc.c.Text
	sc.deadline(s.timeout)
	if _, _, err := text.ReadResponse(250); err != nil {
		return "", s.fail("MAIL FROM", err)
	}
	sc.deadline(s.timeout)
	_, _, rcptErr := text.ReadResponse(25)
	var tp *textproto.Error
	if rcptErr != nil && (!errors.As(rcptErr, &tp) || tp.Code < 500) {
		return "", s.fail("RCPT TO", rcptErr)
	}
	sc.deadline(s.timeout)
	_, _, dataErr := text.ReadResponse(354)
	switch {
	case rcptErr == nil && dataErr == nil:
		return "", nil
	case rcptErr == nil:
		return s.refuse(sc, "DATA", m, dataErr)
	case dataErr == nil:
		// A server that takes DATA without a recipient gets an empty
		// message, which goes nowhere.
		if err := s.endEmptyData(sc); err != nil {
			return "", err
		}
	case !errors.As(dataErr, &tp):
		return "", s.fail("DATA", dataErr)
	}
	return s.refuse(sc, "RCPT TO", m, rcptErr)
}

// endEmptyData ends a DATA at once, and reads the reply, whatever it
// says.
func (s *smtpSender) endEmptyData(sc *smtpConn) error {
	sc.buf = append(sc.buf[:0], ".\r\n"...)
	sc.deadline(s.timeout)
	if err := sc.flush(); err != nil {
		return s.fail("end of DATA", err)
	}
	if _, _, err := sc.c.Text.ReadResponse(0); err != nil {
		return s.fail("end of DATA", err)
	}
	return nil
}

// errLineBreak is net/smtp's error for an address that would add a line
// to a command.
var errLineBreak = errors.New("smtp: A line must not contain CR or LF")

// brokenEnvelope returns the command whose line m's from or to would
// break, which net/smtp's Client refuses to send, or "".
func brokenEnvelope(m *message) string {
	switch {
	case strings.ContainsAny(m.from, "\r\n"):
		return "MAIL FROM"
	case strings.ContainsAny(m.to, "\r\n"):
		return "RCPT TO"
	}
	return ""
}

// flush writes sc.buf to the server in one write.
func (sc *smtpConn) flush() error {
	w := sc.c.Text.W
	if _, err := w.Write(sc.buf); err != nil {
		return err
	}
	return w.Flush()
}

// appendEnvelope appends m's MAIL FROM, RCPT TO and DATA commands to b,
// as net/smtp's Client writes them; mailExt is what MAIL FROM adds.
func appendEnvelope(b []byte, mailExt string, m *message) []byte {
	b = append(b, "MAIL FROM:<"...)
	b = append(b, m.from...)
	b = append(b, '>')
	b = append(b, mailExt...)
	b = append(b, "\r\nRCPT TO:<"...)
	b = append(b, m.to...)
	return append(b, ">\r\nDATA\r\n"...)
}

// appendData appends data dot-stuffed, and the final ".", to b: the same
// bytes as net/textproto's DotWriter writes for data and its Close. A
// line that starts with "." gets another in front, a bare LF becomes
// CRLF, and the last line gets a CRLF when it has none.
func appendData(b, data []byte) []byte {
	if len(data) == 0 {
		return append(b, "\r\n.\r\n"...)
	}
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line = data[:i+1]
		}
		data = data[len(line):]
		if line[0] == '.' {
			b = append(b, '.')
		}
		// The common line: CRLF at its end and no other CR.
		if n := len(line); n >= 2 && line[n-1] == '\n' && bytes.IndexByte(line, '\r') == n-2 {
			b = append(b, line...)
			continue
		}
		var endedCR bool
		b, endedCR = appendDataLine(b, line)
		switch {
		case endedCR:
			b = append(b, '\n')
		case line[len(line)-1] != '\n':
			b = append(b, "\r\n"...)
		}
	}
	return append(b, ".\r\n"...)
}

// appendDataLine appends line, which ends at its first LF if it has one,
// as DotWriter does after its first byte's dot-stuffing: a LF not after a
// CR becomes CRLF. It tells whether line ended with that CR, DotWriter's
// state that adds only the LF at the end.
func appendDataLine(b, line []byte) (_ []byte, endedCR bool) {
	cr := false
	for _, c := range line {
		switch {
		case cr:
			cr = false
		case c == '\r':
			cr = true
		case c == '\n':
			b = append(b, '\r')
		}
		b = append(b, c)
	}
	return b, cr
}

// refuse turns a permanent (5xx) reply about one message into its
// refusal, after resetting the transaction so that the next message can
// go (unless the next message's commands were sent already); any other
// error is the session's.
func (s *smtpSender) refuse(sc *smtpConn, cmd string, m *message, err error) (string, error) {
	var tp *textproto.Error
	if !errors.As(err, &tp) || tp.Code < 500 {
		return "", s.fail(cmd, err)
	}
	// After a refused final ".", the transaction is over (RFC 5321
	// 4.1.1.4) and the next message's may have begun: no RSET then.
	if !sc.pending {
		sc.deadline(s.timeout)
		if rerr := sc.c.Reset(); rerr != nil {
			return "", s.fail("RSET", rerr)
		}
	}
	return fmt.Sprintf("email: %s <%s> refused: %d %s", cmd, m.to, tp.Code, tp.Msg), nil
}

// fail wraps a failure of the session with sdk.Unavailable, so that the
// engine waits and retries the batch rather than dead-lettering it: a
// failure of the session is about the server or this plugin's settings,
// never about the records. One that will not pass by itself (a 5xx reply
// to MAIL FROM or AUTH, a TLS certificate that does not verify, net/smtp
// refusing AUTH on a plain connection) is logged as an error to fix: the
// emails wait, nothing is skipped, until the settings are.
func (s *smtpSender) fail(cmd string, err error) error {
	err = fmt.Errorf("email: smtp %s: %s: %w", s.addr, cmd, err)
	if !transient(err) {
		s.log.Error("the mail server refuses this plugin's session; emails wait until the settings are fixed", "err", err)
	}
	return sdk.Unavailable(err)
}

func transient(err error) bool {
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return tp.Code >= 400 && tp.Code < 500
	}
	var ne net.Error
	var cv *tls.CertificateVerificationError
	switch {
	case errors.As(err, &cv):
		return false
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return true
	}
	return false
}

// get returns an idle connection that still answers, or a new one.
func (s *smtpSender) get(ctx context.Context) (*smtpConn, error) {
	for {
		s.mu.Lock()
		n := len(s.idle)
		if n == 0 {
			s.mu.Unlock()
			break
		}
		sc := s.idle[n-1]
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		if time.Since(sc.since) > maxIdleTime {
			sc.quit(time.Second)
			continue
		}
		sc.deadline(s.timeout)
		if err := sc.c.Noop(); err != nil {
			_ = sc.c.Close()
			continue
		}
		return sc, nil
	}
	return s.dial(ctx)
}

// put keeps sc for the next batch, or closes it when the pool is full or
// closed.
func (s *smtpSender) put(sc *smtpConn) {
	sc.since = time.Now()
	s.mu.Lock()
	if !s.closed && len(s.idle) < maxIdleConns {
		s.idle = append(s.idle, sc)
		sc = nil
	}
	s.mu.Unlock()
	if sc != nil {
		sc.quit(time.Second)
	}
}

// dial opens a session: connect, greeting, EHLO, STARTTLS when offered,
// AUTH PLAIN when offered and a user is set.
func (s *smtpSender) dial(ctx context.Context) (*smtpConn, error) {
	d := net.Dialer{Timeout: s.timeout}
	raw, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("email: smtp %s: connect: %w", s.addr, err)
		}
		return nil, sdk.Unavailable(fmt.Errorf("email: smtp %s: connect: %w", s.addr, err))
	}
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	sc := &smtpConn{raw: raw}
	sc.deadline(s.timeout)
	if sc.c, err = smtp.NewClient(raw, s.host); err != nil {
		_ = raw.Close()
		return nil, s.fail("greeting", err)
	}
	if err := s.open(sc); err != nil {
		_ = sc.c.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("email: smtp %s: %w", s.addr, errors.Join(ctx.Err(), err))
		}
		return nil, err
	}
	return sc, nil
}

func (s *smtpSender) open(sc *smtpConn) error {
	sc.deadline(s.timeout)
	if err := sc.c.Hello(s.helo); err != nil {
		return s.fail("EHLO", err)
	}
	if ok, _ := sc.c.Extension("STARTTLS"); ok {
		sc.deadline(s.timeout)
		if err := sc.c.StartTLS(s.tls); err != nil {
			return s.fail("STARTTLS", err)
		}
	}
	sc.pipelining, _ = sc.c.Extension("PIPELINING")
	if ok, _ := sc.c.Extension("8BITMIME"); ok {
		sc.mailExt += " BODY=8BITMIME"
	}
	if ok, _ := sc.c.Extension("SMTPUTF8"); ok {
		sc.mailExt += " SMTPUTF8"
	}
	if s.user == "" {
		return nil
	}
	if ok, _ := sc.c.Extension("AUTH"); !ok {
		s.warnNoAuth()
		return nil
	}
	sc.deadline(s.timeout)
	if err := sc.c.Auth(smtp.PlainAuth("", s.user, s.pwd, s.host)); err != nil {
		return s.fail("AUTH", err)
	}
	return nil
}

func (s *smtpSender) warnNoAuth() {
	s.mu.Lock()
	first := !s.warned
	s.warned = true
	s.mu.Unlock()
	if first {
		s.log.Warn("the SMTP server offers no AUTH: sending without authenticating although smtp_user is set", "smtp_addr", s.addr)
	}
}

// close quits the idle connections; connections in use are closed when
// their batch ends.
func (s *smtpSender) close() error {
	s.mu.Lock()
	idle := s.idle
	s.idle, s.closed = nil, true
	s.mu.Unlock()
	for _, sc := range idle {
		sc.quit(time.Second)
	}
	return nil
}
