package store

import (
	"strings"
	"testing"
	"time"
)

func TestParseDSN(t *testing.T) {
	for _, tc := range []struct {
		dsn, dataDir string
		dialect      Dialect
		desc         string
	}{
		{"embedded", "./data", SQLite, "embedded SQLite ./data/billing.db"},
		{"embedded", "data", SQLite, "embedded SQLite ./data/billing.db"},
		{"", "/var/lib/billing", SQLite, "embedded SQLite /var/lib/billing/billing.db"},
		{"sqlite:/tmp/x.db", "", SQLite, "SQLite /tmp/x.db"},
		{"mysql://billing:s3cret@tcp(db.internal:3306)/billing", "", MySQL, "MySQL billing@db.internal:3306/billing"},
	} {
		tg, err := parseDSN(tc.dsn, tc.dataDir)
		if err != nil {
			t.Errorf("%q: %v", tc.dsn, err)
			continue
		}
		if tg.dialect != tc.dialect || tg.desc != tc.desc {
			t.Errorf("%q: got %s %q, want %s %q", tc.dsn, tg.dialect, tg.desc, tc.dialect, tc.desc)
		}
		if strings.Contains(tg.desc, "s3cret") {
			t.Errorf("%q: the description shows the password", tc.dsn)
		}
	}
	tg, err := parseDSN("mysql://u:p@tcp(h:3306)/db?time_zone=%27-05:00%27", "")
	if err != nil {
		t.Fatal(err)
	}
	c := tg.mysql
	if !c.ParseTime || c.Loc != time.UTC || c.Params["time_zone"] != "'-05:00'" || !strings.Contains(c.Params["sql_mode"], "STRICT_ALL_TABLES") || c.InterpolateParams {
		t.Errorf("mysql config: got parseTime=%v loc=%v params=%v interpolate=%v", c.ParseTime, c.Loc, c.Params, c.InterpolateParams)
	}
	for _, bad := range []string{"mysql://u:p@tcp(h:3306)/", "mysql://u:secret@tcp(h:3306/db", "postgres://x", "sqlite:", "sqlite:/a?b"} {
		_, err := parseDSN(bad, "")
		if err == nil {
			t.Errorf("%q: no error", bad)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: error %q shows the password", bad, err)
		}
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(cursor{CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC), ID: "t-1"}.encode())
	f.Add("")
	f.Add("eyJ0IjoiMjAyNiJ9")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil {
			return
		}
		again, err := decodeCursor(c.encode())
		if err != nil || again != c {
			t.Fatalf("re-encoded cursor %+v: got %+v, %v", c, again, err)
		}
	})
}
