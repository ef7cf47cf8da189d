package pipeline

import (
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// source is the text of a pipeline file, kept to map byte offsets inside
// scalar values (an expression's error, a bad "${") back to file
// positions.
type source struct {
	lines []string
}

func newSource(data []byte) *source {
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return &source{lines: lines}
}

// valuePos returns the file position of byte offset off in n's value.
// Columns count characters, as yaml.v3's do.
//
// The mapping is exact for a scalar on one line, plain or quoted (escape
// sequences such as \" are accounted for), and for a literal block (|)
// without an indentation indicator. It is approximate elsewhere: a folded
// block (>) assumes each line break became one space, and a plain or
// quoted scalar that spans lines reports its first character. Offsets in
// text that interpolation changed refer to the interpolated text.
func (s *source) valuePos(n *yaml.Node, off int) Pos {
	if s == nil || n.Line < 1 || n.Line > len(s.lines) {
		return Pos{n.Line, n.Column}
	}
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return s.blockPos(n, off)
	}
	return s.flowPos(n, off)
}

// flowPos maps an offset in a plain or quoted scalar that starts at
// n.Line:n.Column by reading the source line.
func (s *source) flowPos(n *yaml.Node, off int) Pos {
	start := Pos{n.Line, n.Column}
	col := n.Column
	rest := skipRunes(s.lines[n.Line-1], col-1)
	quoted := n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0
	if quoted && rest != "" {
		rest = rest[1:]
		col++
		start.Column++
	}
	for consumed := 0; consumed < off; {
		if rest == "" {
			return start // the scalar goes on to another line
		}
		src, val := scalarUnit(rest, n.Style)
		if src == 0 {
			return start // a closing quote before off
		}
		consumed += val
		col += utf8.RuneCountInString(rest[:src])
		rest = rest[src:]
	}
	return Pos{n.Line, col}
}

// scalarUnit reads one source unit at the start of rest: a character, an
// escape sequence in a double-quoted scalar or a doubled quote in a
// single-quoted one. It returns its length in the source and in the
// value, both in bytes; src is 0 at a closing quote.
func scalarUnit(rest string, style yaml.Style) (src, val int) {
	r, w := utf8.DecodeRuneInString(rest)
	switch {
	case style&yaml.DoubleQuotedStyle != 0 && r == '"':
		return 0, 0
	case style&yaml.DoubleQuotedStyle != 0 && r == '\\':
		return escapeUnit(rest)
	case style&yaml.SingleQuotedStyle != 0 && r == '\'':
		if strings.HasPrefix(rest, "''") {
			return 2, 1
		}
		return 0, 0
	}
	return w, w
}

// escapeUnit measures a YAML double-quoted escape sequence.
func escapeUnit(rest string) (src, val int) {
	if len(rest) < 2 {
		return len(rest), 0
	}
	hex := map[byte]int{'x': 2, 'u': 4, 'U': 8}[rest[1]]
	if hex > 0 && len(rest) >= 2+hex {
		var r rune
		for _, c := range []byte(rest[2 : 2+hex]) {
			r = r<<4 | rune(hexVal(c))
		}
		if w := utf8.RuneLen(r); w > 0 {
			return 2 + hex, w
		}
		return 2 + hex, utf8.RuneLen(utf8.RuneError)
	}
	switch rest[1] {
	case 'N', '_':
		return 2, 2
	case 'L', 'P':
		return 2, 3
	}
	return 2, 1
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return 0
}

// blockPos maps an offset in a literal or folded block scalar, whose
// content starts on the line after its indicator.
func (s *source) blockPos(n *yaml.Node, off int) Pos {
	first, indent := s.blockIndent(n.Line)
	if first < 0 {
		return Pos{n.Line, n.Column}
	}
	for i := first; i < len(s.lines); i++ {
		content := skipRunes(s.lines[i], indent)
		if off <= len(content) {
			return Pos{i + 1, indent + utf8.RuneCountInString(content[:off]) + 1}
		}
		off -= len(content) + 1 // the line break, or the space it folded to
	}
	return Pos{first + 1, indent + 1}
}

// blockIndent finds the first non-blank line after the 1-based line
// indicator and returns its 0-based index and its indentation, or -1.
func (s *source) blockIndent(indicator int) (first, indent int) {
	for i := indicator; i < len(s.lines); i++ {
		trimmed := strings.TrimLeft(s.lines[i], " ")
		if strings.TrimSpace(trimmed) != "" {
			return i, len(s.lines[i]) - len(trimmed)
		}
	}
	return -1, 0
}

// skipRunes returns s without its first n characters.
func skipRunes(s string, n int) string {
	for ; n > 0 && s != ""; n-- {
		_, w := utf8.DecodeRuneInString(s)
		s = s[w:]
	}
	return s
}
