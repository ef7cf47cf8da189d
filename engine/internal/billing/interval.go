package billing

import (
	"errors"
	"strings"
	"time"
)

// ErrInvalid is the error, or the cause, of every interval that cannot be
// used; the error is an *IntervalError naming the field at fault.
var ErrInvalid = errors.New("billing: invalid interval")

// IntervalError is an invalid interval: the field at fault ("interval",
// "from" or "to") and the rule it breaks. errors.Is(err, ErrInvalid)
// holds for it.
type IntervalError struct {
	Field, Rule string
}

// Error implements error.
func (e *IntervalError) Error() string {
	return "billing: invalid interval: " + e.Field + ": " + e.Rule
}

// Is reports whether target is ErrInvalid.
func (e *IntervalError) Is(target error) bool { return target == ErrInvalid }

// MaxPeriod is the longest period a cycle may cover: 366 days.
const MaxPeriod = 366 * 24 * time.Hour

// The rule of the interval field.
const intervalRule = "must be a Go duration such as 24h (at least 1ms, at most 8784h), daily, weekly, monthly, or FROM/TO in RFC 3339"

// kind is what an Interval counts from.
type kind int

const (
	kindDuration kind = iota + 1
	kindDaily
	kindWeekly
	kindMonthly
	kindFixed
)

// Interval names a billing cycle's period. The zero Interval is not
// valid; make one with ParseInterval or Between. Intervals are values,
// safe to copy and share.
type Interval struct {
	kind     kind
	d        time.Duration
	from, to time.Time
}

// ParseInterval reads an interval: a Go duration ("24h", "90m"; at least
// 1ms and at most MaxPeriod), "daily", "weekly" or "monthly" (in any
// case), or "FROM/TO" with RFC 3339 bounds (see Between). Errors are
// *IntervalError (field "interval"), matching ErrInvalid.
func ParseInterval(s string) (Interval, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "daily":
		return Interval{kind: kindDaily}, nil
	case "weekly":
		return Interval{kind: kindWeekly}, nil
	case "monthly":
		return Interval{kind: kindMonthly}, nil
	}
	if from, to, ok := strings.Cut(s, "/"); ok {
		f, errF := time.Parse(time.RFC3339Nano, from)
		t, errT := time.Parse(time.RFC3339Nano, to)
		if errF != nil || errT != nil {
			return Interval{}, &IntervalError{Field: "interval", Rule: "FROM/TO: both bounds must be RFC 3339 timestamps, e.g. 2026-03-01T00:00:00Z"}
		}
		iv, err := Between(f, t)
		if ie := (*IntervalError)(nil); errors.As(err, &ie) {
			return Interval{}, &IntervalError{Field: "interval", Rule: "FROM/TO: " + ie.Field + " " + ie.Rule}
		}
		return iv, err
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Millisecond || d > MaxPeriod {
		return Interval{}, &IntervalError{Field: "interval", Rule: intervalRule}
	}
	return Interval{kind: kindDuration, d: d.Truncate(time.Millisecond)}, nil
}

// Between returns the interval [from, to), kept to the millisecond: from
// must be before to, at most MaxPeriod before it, and both must lie in the
// years 1970 to 9999. Errors are *IntervalError naming "from" or "to",
// matching ErrInvalid.
func Between(from, to time.Time) (Interval, error) {
	from, to = from.UTC().Truncate(time.Millisecond), to.UTC().Truncate(time.Millisecond)
	switch {
	case from.Year() < 1970 || from.Year() > 9999:
		return Interval{}, &IntervalError{Field: "from", Rule: "must lie in the years 1970 to 9999"}
	case to.Year() < 1970 || to.Year() > 9999:
		return Interval{}, &IntervalError{Field: "to", Rule: "must lie in the years 1970 to 9999"}
	case !from.Before(to):
		return Interval{}, &IntervalError{Field: "to", Rule: "must be later than from (by 1ms at least)"}
	case to.Sub(from) > MaxPeriod:
		return Interval{}, &IntervalError{Field: "to", Rule: "must be at most 366 days after from"}
	}
	return Interval{kind: kindFixed, from: from, to: to}, nil
}

// fixedFormat writes explicit bounds: RFC 3339 in UTC, with milliseconds
// only when there are any.
const fixedFormat = "2006-01-02T15:04:05.999Z07:00"

// String returns the interval in the form ParseInterval reads: "24h",
// "1h30m", "daily", "weekly", "monthly" or "FROM/TO". It is at most 59
// characters long.
func (iv Interval) String() string {
	switch iv.kind {
	case kindDuration:
		s := iv.d.String() // "24h0m0s", "1h30m0s", "30m0s", "1.5s"
		if strings.HasSuffix(s, "m0s") {
			s = s[:len(s)-2]
		}
		if strings.HasSuffix(s, "h0m") {
			s = s[:len(s)-2]
		}
		return s
	case kindDaily:
		return "daily"
	case kindWeekly:
		return "weekly"
	case kindMonthly:
		return "monthly"
	case kindFixed:
		return iv.from.Format(fixedFormat) + "/" + iv.to.Format(fixedFormat)
	}
	return ""
}

// Period returns the period [start, end) the interval names at now, in
// UTC milliseconds. The zero Interval returns zero times.
func (iv Interval) Period(now time.Time) (start, end time.Time) {
	now = now.UTC().Truncate(time.Millisecond)
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	switch iv.kind {
	case kindDuration:
		return now.Add(-iv.d), now
	case kindDaily:
		return midnight.AddDate(0, 0, -1), midnight
	case kindWeekly:
		monday := midnight.AddDate(0, 0, -((int(now.Weekday()) + 6) % 7))
		return monday.AddDate(0, 0, -7), monday
	case kindMonthly:
		first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
		return first.AddDate(0, -1, 0), first
	case kindFixed:
		return iv.from, iv.to
	}
	return time.Time{}, time.Time{}
}
