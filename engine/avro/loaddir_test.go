package avro_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/billing-engine/billing/engine/avro"
)

func TestLoadDirSchemas(t *testing.T) {
	reg := loadSchemas(t)
	if got, want := reg.Names(), []string{"billing.Client", "billing.Invoice", "billing.Transaction"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	for _, name := range []string{"Transaction", "Client", "Invoice"} {
		s, err := reg.Schema(name)
		if err != nil {
			t.Errorf("Schema(%q): %v", name, err)
			continue
		}
		if want := "billing." + name; s.Name != want {
			t.Errorf("Schema(%q).Name = %q, want %q", name, s.Name, want)
		}
		if strings.Contains(s.Canonical(), "logicalType") || strings.Contains(s.Canonical(), "doc") {
			t.Errorf("%s canonical form keeps non-canonical attributes: %s", name, s.Canonical())
		}
	}
	versions := reg.Versions("billing.Transaction")
	if len(versions) != 2 {
		t.Fatalf("len(Versions(billing.Transaction)) = %d, want 2 (current and v1)", len(versions))
	}
	cur := mustSchema(t, reg, "billing.Transaction")
	if versions[0] != cur {
		t.Errorf("Versions()[0] = %v, want the current %v", versions[0], cur)
	}
	v1 := versions[1]
	if _, ok := v1.Field("billed_at"); ok {
		t.Errorf("v1 has billed_at; want the older version without it")
	}
	if got, err := reg.Lookup(v1.Fingerprint); err != nil || got != v1 {
		t.Errorf("Lookup(v1 fingerprint) = %v, %v; want %v", got, err, v1)
	}
}

func TestLoadDirErrors(t *testing.T) {
	tests := []struct {
		name      string
		dir       string
		wantFiles []string // every one must be named in the error
		wantErr   error
	}{
		{
			name: "broken schemas",
			dir:  "testdata/broken",
			wantFiles: []string{
				filepath.Join("testdata", "broken", "bad_json.avsc"),
				filepath.Join("testdata", "broken", "bad_type.avsc"),
				filepath.Join("testdata", "broken", "versions", "account.v0.avsc"),
			},
			wantErr: avro.ErrInvalidSchema,
		},
		{
			name:      "two current files for one name",
			dir:       "testdata/duplicate",
			wantFiles: []string{filepath.Join("testdata", "duplicate", "a.avsc"), filepath.Join("testdata", "duplicate", "b.avsc")},
			wantErr:   avro.ErrInvalidSchema,
		},
		{
			name:    "missing directory",
			dir:     "testdata/does-not-exist",
			wantErr: os.ErrNotExist,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, err := avro.LoadDir(tt.dir)
			if err == nil {
				t.Fatalf("LoadDir(%q) = %v, nil; want an error", tt.dir, reg.Names())
			}
			if reg != nil {
				t.Errorf("LoadDir(%q) registry = %v, want nil on error", tt.dir, reg)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("LoadDir(%q) error = %v, want it to wrap %v", tt.dir, err, tt.wantErr)
			}
			for _, f := range tt.wantFiles {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("LoadDir(%q) error does not name %s:\n%v", tt.dir, f, err)
				}
			}
			if strings.Contains(err.Error(), "account.avsc:") {
				t.Errorf("LoadDir(%q) blames the valid account.avsc:\n%v", tt.dir, err)
			}
		})
	}
}
