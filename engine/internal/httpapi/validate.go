package httpapi

import (
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/billing-engine/billing/engine/iso4217"
	"github.com/billing-engine/billing/engine/store"
)

// Rules shown in field errors.
const (
	ruleRequired = "required"
	ruleEmail    = "must be a valid email address (local@domain.tld, at most 254 characters)"
	ruleCurrency = "must be an active ISO 4217 currency code in upper case, e.g. EUR"
	ruleAmount   = "must be a positive integer number of minor units, at most 1000000000000"
)

// validEmail reports whether s is a plain address (no display name) with
// a dotted domain of valid labels.
func validEmail(s string) bool {
	if len(s) > store.MaxEmailLen || strings.TrimSpace(s) != s {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	local, domain := s[:at], s[at+1:]
	if local == "" || len(local) > 64 || !strings.Contains(domain, ".") {
		return false
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				return false
			}
		}
	}
	return true
}

// checkText adds a problem when s is empty (and required) or longer than
// max characters, or has control characters other than newline and tab.
func (f *fieldErrors) checkText(field, s string, required bool, max int) {
	switch {
	case required && strings.TrimSpace(s) == "":
		f.add(field, "must not be empty")
	case utf8.RuneCountInString(s) > max:
		f.add(field, fmt.Sprintf("must be at most %d characters", max))
	case !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) >= 0:
		f.add(field, "must be valid UTF-8 text without control characters")
	}
}

// checkAmount adds a problem for an amount that is not positive or too
// large.
func (f *fieldErrors) checkAmount(field string, v int64) {
	if v <= 0 || v > MaxAmountMinor {
		f.add(field, ruleAmount)
	}
}

func (f *fieldErrors) checkCurrency(field, code string) {
	if !iso4217.Valid(code) {
		f.add(field, ruleCurrency)
	}
}

// oneOf is the rule "must be one of A, B, C".
func oneOf[T ~string](vals []T) string { return "must be one of " + names(vals) }

// names returns "A, B or C".
func names[T ~string](vals []T) string {
	s := make([]string, len(vals))
	for i, v := range vals {
		s[i] = string(v)
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// timeFormat is how the API writes timestamps: RFC 3339 in UTC with
// exactly three fraction digits, so that they sort as text too.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// timestamp is a time written in timeFormat.
type timestamp time.Time

// MarshalJSON implements json.Marshaler.
func (t timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(timeFormat) + `"`), nil
}
