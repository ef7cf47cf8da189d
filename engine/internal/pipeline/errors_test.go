package pipeline

import (
	"errors"
	"testing"
)

func TestErrorString(t *testing.T) {
	for _, c := range []struct {
		err  Error
		want string
	}{
		{Error{"f.yaml", 3, 7, "bad"}, "f.yaml:3:7: bad"},
		{Error{"f.yaml", 3, 0, "bad"}, "f.yaml:3: bad"},
		{Error{"f.yaml", 0, 0, "bad"}, "f.yaml: bad"},
		{Error{"", 0, 0, "bad"}, "bad"},
		{Error{"", 2, 1, "bad"}, "2:1: bad"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

func TestListSortsAndDeduplicates(t *testing.T) {
	l := List{
		{File: "f", Line: 9, Column: 1, Msg: "c"},
		{File: "f", Line: 2, Column: 5, Msg: "b"},
		{File: "f", Line: 2, Column: 1, Msg: "a"},
		{File: "f", Line: 9, Column: 1, Msg: "c"},
	}
	err := l.err()
	want := "f:2:1: a\nf:2:5: b\nf:9:1: c"
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.Msg != "a" {
		t.Errorf("errors.As: got %v, want the first problem", e)
	}
	if (List{}).err() != nil {
		t.Errorf("empty list: got an error, want nil")
	}
}
