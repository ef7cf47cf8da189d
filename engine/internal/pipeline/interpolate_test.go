package pipeline

import (
	"strings"
	"testing"
)

func TestInterpolate(t *testing.T) {
	env := mapEnv(map[string]string{"SET": "value", "EMPTY": ""})
	for _, c := range []struct {
		in, want string
		errOff   int    // when errMsg is set
		errMsg   string // a substring of the error
	}{
		{in: "plain", want: "plain"},
		{in: "${SET}", want: "value"},
		{in: "a-${SET}-b", want: "a-value-b"},
		{in: "${SET:-default}", want: "value"},
		{in: "${UNSET:-default}", want: "default"},
		{in: "${UNSET:-}", want: ""},
		{in: "${EMPTY:-default}", want: "default"},
		{in: "${EMPTY}", want: ""},
		{in: "${UNSET:-a:b/c}", want: "a:b/c"},
		{in: "$$", want: "$"},
		{in: "$${SET}", want: "${SET}"},
		{in: "$$$${SET}", want: "$${SET}"},
		{in: "$$${SET}", want: "$value"},
		{in: "cost $5", want: "cost $5"},
		{in: "trailing $", want: "trailing $"},
		{in: "${SET}${SET}", want: "valuevalue"},
		{in: "${UNSET}", errOff: 0, errMsg: "environment variable UNSET is not set"},
		{in: "ab${SET}${UNSET}", errOff: 8, errMsg: "UNSET is not set"},
		{in: "x${UNTERMINATED", errOff: 1, errMsg: "unterminated"},
		{in: "${}", errOff: 0, errMsg: "invalid variable name"},
		{in: "${1X}", errOff: 0, errMsg: "invalid variable name"},
		{in: "${A-b}", errOff: 0, errMsg: `invalid variable name "A-b"`},
	} {
		got, off, err := interpolate(c.in, env)
		switch {
		case c.errMsg == "" && err != nil:
			t.Errorf("interpolate(%q): got error %v, want %q", c.in, err, c.want)
		case c.errMsg == "" && got != c.want:
			t.Errorf("interpolate(%q): got %q, want %q", c.in, got, c.want)
		case c.errMsg != "" && (err == nil || !strings.Contains(err.Error(), c.errMsg) || off != c.errOff):
			t.Errorf("interpolate(%q): got %q, offset %d, error %v; want offset %d, error containing %q",
				c.in, got, off, err, c.errOff, c.errMsg)
		}
	}
}

func TestInterpolateLeavesKeysAlone(t *testing.T) {
	_, err := Parse("test.yaml", []byte("${KEY}: 1\n"), WithLookupEnv(noEnv))
	if err == nil || !strings.Contains(err.Error(), `unknown key "${KEY}"`) {
		t.Errorf("got %v, want an unknown key error for the literal key", err)
	}
}
