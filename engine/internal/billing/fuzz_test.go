package billing_test

import (
	"errors"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/internal/billing"
)

// FuzzParseInterval checks that any input either fails with an
// IntervalError or names a period of at most MaxPeriod, that String reads
// back as the same interval, and that nothing panics.
func FuzzParseInterval(f *testing.F) {
	for _, s := range []string{"24h", "1ms", "daily", "weekly", "MONTHLY", "8784h", "-1h", "1e9h",
		"2026-03-01T00:00:00Z/2026-03-02T00:00:00Z", "2026-03-01T00:00:00.5+01:00/2026-03-01T00:00:01Z", "/", "a/b/c"} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 4, 10, 15, 30, 123456789, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		iv, err := billing.ParseInterval(s)
		if err != nil {
			var ie *billing.IntervalError
			if !errors.As(err, &ie) || ie.Field != "interval" {
				t.Fatalf("ParseInterval(%q): error %v is not an IntervalError on interval", s, err)
			}
			return
		}
		start, end := iv.Period(now)
		if !start.Before(end) || end.Sub(start) > billing.MaxPeriod+31*24*time.Hour {
			t.Fatalf("ParseInterval(%q): period [%v, %v)", s, start, end)
		}
		again, err := billing.ParseInterval(iv.String())
		if err != nil || again != iv {
			t.Fatalf("ParseInterval(%q).String() = %q reads back as %v, %v", s, iv.String(), again, err)
		}
		if len(iv.String()) > 59 {
			t.Fatalf("ParseInterval(%q).String() = %q: longer than 59", s, iv.String())
		}
	})
}
