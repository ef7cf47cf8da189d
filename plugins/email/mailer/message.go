package mailer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
	"unicode"
)

// maxSubjectRunes bounds a subject after templating, so that a long
// description cannot make an unreadable (or over-long) header.
const maxSubjectRunes = 200

// message is one rendered email, ready to be sent.
type message struct {
	// index is the record's position in the batch.
	index int
	kind  string
	refID string
	// from is the envelope sender, to the envelope recipient: bare
	// addresses.
	from, to string
	// id is the Message-ID, angle brackets included.
	id string
	// data is the message, headers and body, with CRLF line endings.
	data []byte
}

// messageID returns the Message-ID of the email of kind about refID:
// "<kind.refID@domain>", with each character of refID that may not stand
// in a Message-ID (RFC 5322 dot-atom-text, '=' and '.' included) written
// as =XX, so that the id is valid, deterministic and different for
// different refIDs. A message sent again has the same Message-ID.
func messageID(kind, refID, domain string) string {
	var b strings.Builder
	b.WriteString("<" + kind + ".")
	for i := 0; i < len(refID); i++ {
		c := refID[i]
		if c < 0x80 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-/?^_`{|}~", c) >= 0) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "=%02X", c)
	}
	b.WriteString("@" + domain + ">")
	return b.String()
}

// headerText makes s safe for a header value: every control character
// (CR and LF included) and every run of white space becomes one space, and
// the result is trimmed and cut to max characters. Data cannot add a
// header or a line.
func headerText(s string, max int) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
	}), " ")
	return truncate(max, s)
}

// encodeHeader returns s as a header value: as is when it is printable
// ASCII, otherwise as RFC 2047 encoded-words (mime.QEncoding, UTF-8).
func encodeHeader(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return mime.QEncoding.Encode("utf-8", s)
		}
	}
	return s
}

// writeHeader writes "name: value" folded before spaces (the one after
// the colon included) so that lines stay within 78 characters where the
// value allows it (RFC 5322 2.2.3): an RFC 2047 encoded-word, up to 75
// characters, then gets a line of its own. value must be free of CR and
// LF.
func writeHeader(b *bytes.Buffer, name, value string) {
	line := name + ":"
	for _, word := range strings.Split(value, " ") {
		if len(line)+1+len(word) > 78 && strings.TrimSpace(line) != "" {
			b.WriteString(line + "\r\n")
			line = ""
		}
		line += " " + word
	}
	b.WriteString(line + "\r\n")
}

// address formats a for a header, with its name cleaned of anything that
// could break the header.
func address(a mail.Address) string {
	a.Name = headerText(a.Name, 100)
	return a.String()
}

// render builds the multipart/alternative message: the text part and the
// HTML part, both UTF-8 in quoted-printable, under the headers From, To,
// Subject, Date, Message-ID, MIME-Version, Content-Type and
// Auto-Submitted. The boundary is derived from the Message-ID, so the same
// inputs render the same bytes.
func render(from, to mail.Address, id, subject, text, html string, date time.Time) ([]byte, error) {
	var b bytes.Buffer
	writeHeader(&b, "From", address(from))
	writeHeader(&b, "To", address(to))
	writeHeader(&b, "Subject", encodeHeader(headerText(subject, maxSubjectRunes)))
	writeHeader(&b, "Date", date.UTC().Format(time.RFC1123Z))
	writeHeader(&b, "Message-ID", id)
	writeHeader(&b, "MIME-Version", "1.0")
	writeHeader(&b, "Auto-Submitted", "auto-generated")
	sum := sha256.Sum256([]byte(id))
	// "=_" never occurs in quoted-printable text, so the boundary cannot
	// occur in a part.
	boundary := "=_" + hex.EncodeToString(sum[:12])
	writeHeader(&b, "Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
	b.WriteString("\r\n")
	mw := multipart.NewWriter(&b)
	if err := mw.SetBoundary(boundary); err != nil {
		return nil, fmt.Errorf("email: boundary: %w", err)
	}
	for _, part := range []struct{ ctype, body string }{
		{"text/plain; charset=utf-8", text},
		{"text/html; charset=utf-8", html},
	} {
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", part.ctype)
		h.Set("Content-Transfer-Encoding", "quoted-printable")
		w, err := mw.CreatePart(h)
		if err != nil {
			return nil, fmt.Errorf("email: part: %w", err)
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write([]byte(part.body)); err != nil {
			return nil, fmt.Errorf("email: part: %w", err)
		}
		if err := qp.Close(); err != nil {
			return nil, fmt.Errorf("email: part: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("email: message: %w", err)
	}
	return b.Bytes(), nil
}
