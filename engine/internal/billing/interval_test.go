package billing_test

import (
	"errors"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/internal/billing"
)

func date(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseInterval(t *testing.T) {
	wed := date("2026-03-04T10:15:30.123456Z") // a Wednesday
	for _, tc := range []struct {
		in, now    string
		str        string
		start, end string
	}{
		{"24h", "", "24h", "2026-03-03T10:15:30.123Z", "2026-03-04T10:15:30.123Z"},
		{" 90m ", "", "1h30m", "2026-03-04T08:45:30.123Z", "2026-03-04T10:15:30.123Z"},
		{"1ms", "", "1ms", "2026-03-04T10:15:30.122Z", "2026-03-04T10:15:30.123Z"},
		{"1.5ms", "", "1ms", "2026-03-04T10:15:30.122Z", "2026-03-04T10:15:30.123Z"},
		{"8784h", "", "8784h", "2025-03-03T10:15:30.123Z", "2026-03-04T10:15:30.123Z"},
		{"daily", "", "daily", "2026-03-03T00:00:00Z", "2026-03-04T00:00:00Z"},
		{"Daily", "2026-03-04T00:00:00Z", "daily", "2026-03-03T00:00:00Z", "2026-03-04T00:00:00Z"},
		{"daily", "2026-03-01T23:59:59.999+01:00", "daily", "2026-02-28T00:00:00Z", "2026-03-01T00:00:00Z"},
		{"weekly", "", "weekly", "2026-02-23T00:00:00Z", "2026-03-02T00:00:00Z"},
		{"weekly", "2026-03-02T00:00:00Z", "weekly", "2026-02-23T00:00:00Z", "2026-03-02T00:00:00Z"},     // a Monday
		{"weekly", "2026-03-01T23:59:59.999Z", "weekly", "2026-02-16T00:00:00Z", "2026-02-23T00:00:00Z"}, // a Sunday
		{"weekly", "2021-01-03T12:00:00Z", "weekly", "2020-12-21T00:00:00Z", "2020-12-28T00:00:00Z"},     // in ISO week 53 of 2020
		{"MONTHLY", "", "monthly", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"},
		{"monthly", "2026-01-31T12:00:00Z", "monthly", "2025-12-01T00:00:00Z", "2026-01-01T00:00:00Z"},
		{"monthly", "2028-03-31T00:00:00Z", "monthly", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"},
		{"2026-03-01T00:00:00Z/2026-03-02T00:00:00Z", "", "2026-03-01T00:00:00Z/2026-03-02T00:00:00Z", "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"},
		{"2026-03-01T01:00:00.5+01:00/2026-03-01T00:00:01.0009Z", "", "2026-03-01T00:00:00.5Z/2026-03-01T00:00:01Z", "2026-03-01T00:00:00.5Z", "2026-03-01T00:00:01Z"},
	} {
		now := wed
		if tc.now != "" {
			now = date(tc.now)
		}
		iv, err := billing.ParseInterval(tc.in)
		if err != nil {
			t.Errorf("ParseInterval(%q): %v", tc.in, err)
			continue
		}
		if got := iv.String(); got != tc.str {
			t.Errorf("ParseInterval(%q).String() = %q, want %q", tc.in, got, tc.str)
		}
		start, end := iv.Period(now)
		if !start.Equal(date(tc.start)) || !end.Equal(date(tc.end)) {
			t.Errorf("%q at %s: got [%s, %s), want [%s, %s)", tc.in, now.Format(time.RFC3339Nano),
				start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano), tc.start, tc.end)
		}
		if start.Location() != time.UTC || end.Location() != time.UTC {
			t.Errorf("%q: period not in UTC", tc.in)
		}
		again, err := billing.ParseInterval(iv.String())
		if err != nil || again != iv {
			t.Errorf("%q: String %q does not parse back: %v", tc.in, iv.String(), err)
		}
	}
}

func TestParseIntervalRejects(t *testing.T) {
	for _, in := range []string{
		"", "0s", "-24h", "8784h0m0.001s", "999999h", "500us", "24", "yearly", "hourly", "24 h", "P1D",
		"2026-03-02T00:00:00Z/2026-03-01T00:00:00Z", // reversed
		"2026-03-01T00:00:00Z/2026-03-01T00:00:00Z", // empty
		"2026-03-01T00:00:00Z/2027-03-03T00:00:00Z", // 367 days
		"2026-03-01/2026-03-02",                     // dates, not timestamps
		"2026-03-01T00:00:00Z/",
		"1969-12-31T00:00:00Z/1970-01-02T00:00:00Z",
	} {
		iv, err := billing.ParseInterval(in)
		var ie *billing.IntervalError
		if !errors.Is(err, billing.ErrInvalid) || !errors.As(err, &ie) || ie.Field != "interval" || ie.Rule == "" {
			t.Errorf("ParseInterval(%q) = %v, %v; want an IntervalError on field interval", in, iv, err)
		}
	}
}

func TestBetween(t *testing.T) {
	from := date("2026-03-01T00:00:00Z")
	for _, tc := range []struct {
		name     string
		from, to time.Time
		field    string // "" for valid
	}{
		{"one day", from, from.Add(24 * time.Hour), ""},
		{"366 days", from, from.Add(billing.MaxPeriod), ""},
		{"one millisecond", from, from.Add(time.Millisecond), ""},
		{"367 days", from, from.Add(billing.MaxPeriod + time.Millisecond), "to"},
		{"reversed", from, from.Add(-time.Hour), "to"},
		{"equal", from, from, "to"},
		{"within a millisecond", from, from.Add(time.Microsecond), "to"},
		{"before 1970", date("1969-12-31T23:00:00Z"), from, "from"},
		{"after 9999", date("9999-12-31T23:00:00Z"), date("9999-12-31T23:00:00Z").Add(2 * time.Hour), "to"},
	} {
		iv, err := billing.Between(tc.from, tc.to)
		var ie *billing.IntervalError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.field == "":
			if start, end := iv.Period(time.Now()); !start.Equal(tc.from) || !end.Equal(tc.to) {
				t.Errorf("%s: period [%v, %v)", tc.name, start, end)
			}
		case !errors.As(err, &ie) || !errors.Is(err, billing.ErrInvalid) || ie.Field != tc.field:
			t.Errorf("%s: got %v, want an IntervalError on field %s", tc.name, err, tc.field)
		}
	}
}

func TestZeroIntervalHasNoPeriod(t *testing.T) {
	var iv billing.Interval
	if start, end := iv.Period(time.Now()); !start.IsZero() || !end.IsZero() || iv.String() != "" {
		t.Errorf("zero Interval: got [%v, %v) %q", start, end, iv.String())
	}
}
