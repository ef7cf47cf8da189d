package store_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/billing-engine/billing/engine/store"
	"github.com/billing-engine/billing/engine/store/storetest"
)

func TestEmailsSent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		got, err := db.EmailsSent(ctx, "billed", []string{"t-1", "t-2"})
		if err != nil || len(got) != 0 {
			t.Fatalf("empty log: got %v, %v; want none", got, err)
		}
		at := t0.Add(1234567 * time.Microsecond) // kept to the millisecond
		err = db.MarkEmailsSent(ctx, []store.EmailSent{
			{RefID: "t-1", Kind: "billed", Recipient: "a@example.com", MessageID: "<billed.t-1@example.com>", SentAt: at},
			{RefID: "t-2", Kind: "billed", Recipient: "b@example.com", MessageID: "<billed.t-2@example.com>"},
			{RefID: "t-1", Kind: "invoice", Recipient: "a@example.com", MessageID: "<invoice.t-1@example.com>"},
		})
		if err != nil {
			t.Fatalf("mark: %v", err)
		}
		for _, tc := range []struct {
			kind string
			ids  []string
			want []string
		}{
			{"billed", []string{"t-1", "t-2", "t-3"}, []string{"t-1", "t-2"}},
			{"invoice", []string{"t-1", "t-2"}, []string{"t-1"}},
			{"billed", []string{"t-3"}, nil},
			{"billed", nil, nil},
			{"other", []string{"t-1"}, nil},
			{"billed", []string{"T-1"}, nil}, // ids are case-sensitive
			{"billed", []string{"t-2", "t-2"}, []string{"t-2"}},
		} {
			got, err := db.EmailsSent(ctx, tc.kind, tc.ids)
			if err != nil {
				t.Fatalf("%s %v: %v", tc.kind, tc.ids, err)
			}
			if ids := slices.Sorted(maps.Keys(got)); !slices.Equal(ids, tc.want) {
				t.Errorf("%s %v: got %v, want %v", tc.kind, tc.ids, ids, tc.want)
			}
		}
		e, err := db.GetEmailSent(ctx, "t-1", "billed")
		want := store.EmailSent{RefID: "t-1", Kind: "billed", Recipient: "a@example.com", MessageID: "<billed.t-1@example.com>", SentAt: at.Truncate(time.Millisecond)}
		if err != nil || e != want {
			t.Errorf("get: got %+v, %v; want %+v", e, err, want)
		}
		if _, err := db.GetEmailSent(ctx, "t-3", "billed"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get unknown: got %v, want ErrNotFound", err)
		}
	})
}

func TestMarkEmailsSentKeepsTheFirst(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		first := store.EmailSent{RefID: "t-1", Kind: "billed", Recipient: "first@example.com", MessageID: "<1@x>", SentAt: t0}
		if err := db.MarkEmailsSent(ctx, []store.EmailSent{first}); err != nil {
			t.Fatal(err)
		}
		again := first
		again.Recipient, again.SentAt = "second@example.com", t0.Add(time.Hour)
		dup := again
		dup.Recipient = "third@example.com"
		next := store.EmailSent{RefID: "t-2", Kind: "billed", Recipient: "b@example.com", MessageID: "<2@x>", SentAt: t0}
		// The one already in the log, and a duplicate within the call,
		// are left out; the new one is written.
		if err := db.MarkEmailsSent(ctx, []store.EmailSent{again, next, dup, next}); err != nil {
			t.Fatalf("mark again: %v", err)
		}
		if e, err := db.GetEmailSent(ctx, "t-1", "billed"); err != nil || e != first {
			t.Errorf("t-1: got %+v, %v; want the first %+v", e, err, first)
		}
		if e, err := db.GetEmailSent(ctx, "t-2", "billed"); err != nil || e != next {
			t.Errorf("t-2: got %+v, %v; want %+v", e, err, next)
		}
		if err := db.MarkEmailsSent(ctx, nil); err != nil {
			t.Errorf("mark nothing: %v", err)
		}
	})
}

func TestMarkEmailsSentChunks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		const n = 1_100 // more than two chunks
		var sent []store.EmailSent
		var ids []string
		for i := range n {
			id := fmt.Sprintf("t-%04d", i)
			ids = append(ids, id)
			if i%3 != 0 {
				sent = append(sent, store.EmailSent{RefID: id, Kind: "billed", Recipient: id + "@example.com", MessageID: "<" + id + "@x>"})
			}
		}
		if err := db.MarkEmailsSent(ctx, sent); err != nil {
			t.Fatal(err)
		}
		got, err := db.EmailsSent(ctx, "billed", ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(sent) {
			t.Errorf("got %d sent, want %d", len(got), len(sent))
		}
		for i, id := range ids {
			if got[id] != (i%3 != 0) {
				t.Errorf("%s: got sent %v, want %v", id, got[id], i%3 != 0)
			}
		}
	})
}

func TestMarkEmailsSentInvalid(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		ok := store.EmailSent{RefID: "t-1", Kind: "billed", Recipient: "a@example.com", MessageID: "<1@x>"}
		for _, tc := range []struct {
			name string
			edit func(e *store.EmailSent)
		}{
			{"empty ref", func(e *store.EmailSent) { e.RefID = "" }},
			{"ref with space", func(e *store.EmailSent) { e.RefID = "t 1" }},
			{"ref too long", func(e *store.EmailSent) { e.RefID = strings.Repeat("x", store.MaxIDLen+1) }},
			{"empty kind", func(e *store.EmailSent) { e.Kind = "" }},
			{"kind too long", func(e *store.EmailSent) { e.Kind = strings.Repeat("k", store.MaxEmailKindLen+1) }},
			{"recipient too long", func(e *store.EmailSent) { e.Recipient = strings.Repeat("r", store.MaxEmailLen+1) }},
			{"message id too long", func(e *store.EmailSent) { e.MessageID = strings.Repeat("m", store.MaxMessageIDLen+1) }},
		} {
			bad := ok
			tc.edit(&bad)
			if err := db.MarkEmailsSent(ctx, []store.EmailSent{ok, bad}); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%s: got %v, want ErrInvalid", tc.name, err)
			}
		}
		// Nothing was written, not even the valid entry before the bad one.
		if got, err := db.EmailsSent(ctx, "billed", []string{"t-1"}); err != nil || len(got) != 0 {
			t.Errorf("after invalid calls: got %v, %v; want nothing recorded", got, err)
		}
	})
}

// TestClaimEmails: a claim makes an email its owner's to send; another
// owner finds it busy until the claim expires or is released; the record
// of the email ends the claim, and a sent email is never claimed again.
func TestClaimEmails(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		ids := []string{"t-1", "t-2", "t-3"}
		claim := func(owner string, lease time.Duration) store.EmailClaims {
			t.Helper()
			c, err := db.ClaimEmails(ctx, "billed", ids, owner, lease)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		keys := func(m map[string]bool) string { return fmt.Sprint(slices.Sorted(maps.Keys(m))) }
		a := claim("a", time.Hour)
		if keys(a.Claimed) != "[t-1 t-2 t-3]" || len(a.Busy)+len(a.Sent) != 0 {
			t.Fatalf("first claim: %+v", a)
		}
		if b := claim("b", time.Hour); keys(b.Busy) != "[t-1 t-2 t-3]" || len(b.Claimed) != 0 {
			t.Errorf("other owner: %+v, want all busy", b)
		}
		if again := claim("a", time.Hour); keys(again.Claimed) != "[t-1 t-2 t-3]" {
			t.Errorf("same owner again: %+v, want all its own", again)
		}
		if err := db.MarkEmailsSent(ctx, []store.EmailSent{{RefID: "t-1", Kind: "billed", Recipient: "x@example.com", MessageID: "<m1>"}}); err != nil {
			t.Fatal(err)
		}
		if err := db.ReleaseEmails(ctx, "billed", []string{"t-2"}, "a"); err != nil {
			t.Fatal(err)
		}
		b := claim("b", time.Hour)
		if keys(b.Sent) != "[t-1]" || keys(b.Claimed) != "[t-2]" || keys(b.Busy) != "[t-3]" {
			t.Errorf("after a sent t-1 and released t-2: %+v", b)
		}
		// a's claim on t-3 expires (lease 0): c takes it over.
		c := claim("c", 0)
		if keys(c.Claimed) != "[t-2 t-3]" || keys(c.TakenOver) != "[t-2 t-3]" || keys(c.Sent) != "[t-1]" {
			t.Errorf("expired claims: %+v", c)
		}
		sent, err := db.EmailsSent(ctx, "billed", ids)
		if err != nil || keys(sent) != "[t-1]" {
			t.Errorf("EmailsSent: %v, %v; want only t-1 (claims are not sends)", sent, err)
		}
		if n, err := db.CountEmailsSent(ctx, "billed"); err != nil || n != 1 {
			t.Errorf("CountEmailsSent: %d, %v; want 1", n, err)
		}
		got, err := db.GetEmailSent(ctx, "t-1", "billed")
		if err != nil || got.MessageID != "<m1>" || got.Recipient != "x@example.com" {
			t.Errorf("GetEmailSent: %+v, %v", got, err)
		}
	})
}
