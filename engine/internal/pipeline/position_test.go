package pipeline

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestValuePos(t *testing.T) {
	for _, c := range []struct {
		name string
		yaml string // the value of key k
		off  int    // byte offset in the value
		want Pos
	}{
		{"plain", "k: abc def", 4, Pos{1, 8}},
		{"plain start", "k: abc", 0, Pos{1, 4}},
		{"plain end", "k: abc", 3, Pos{1, 7}},
		{"single", "k: 'abc def'", 4, Pos{1, 9}},
		{"single escape", "k: 'it''s x'", 5, Pos{1, 11}},
		{"double", `k: "abc def"`, 4, Pos{1, 9}},
		{"double escape", `k: "a \"b\" c"`, 6, Pos{1, 13}},
		{"double unicode escape", `k: "\u00e9 x"`, 3, Pos{1, 12}},
		{"multibyte", "k: é x", 3, Pos{1, 6}},
		{"flow", "{k: abc def, j: 1}", 4, Pos{1, 9}},
		{"literal first line", "k: |\n  abc\n  def\n", 1, Pos{2, 4}},
		{"literal second line", "k: |\n  abc\n  def\n", 5, Pos{3, 4}},
		{"literal deeper", "k: |\n  abc\n    def\n", 7, Pos{3, 6}},
		{"folded", "k: >\n  abc\n  def\n", 5, Pos{3, 4}},
		{"plain multi-line is approximate", "k: abc\n  def", 5, Pos{1, 4}},
	} {
		var root yaml.Node
		if err := yaml.Unmarshal([]byte(c.yaml), &root); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		n := root.Content[0].Content[1]
		if got := newSource([]byte(c.yaml)).valuePos(n, c.off); got != c.want {
			t.Errorf("%s: offset %d of %q: got %v, want %v", c.name, c.off, strings.TrimSpace(n.Value), got, c.want)
		}
	}
}
