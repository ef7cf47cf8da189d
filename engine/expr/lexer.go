package expr

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokKind int

const (
	tEOF    tokKind = iota
	tIdent          // identifier or dotted path
	tInt            // decimal integer literal (digits only; sign is unary minus)
	tFloat          // decimal float literal
	tString         // quoted string literal
	tTrue
	tFalse
	tNull
	tIn
	tNot
	tNotIn // synthetic: "not in"
	tOr
	tAnd
	tBang
	tEq
	tNe
	tLt
	tLe
	tGt
	tGe
	tPlus
	tMinus
	tStar
	tSlash
	tPercent
	tLParen
	tRParen
	tLBrack
	tRBrack
	tComma
)

var opText = map[tokKind]string{
	tIn: "in", tNot: "not", tNotIn: "not in", tOr: "||", tAnd: "&&", tBang: "!",
	tEq: "==", tNe: "!=", tLt: "<", tLe: "<=", tGt: ">", tGe: ">=",
	tPlus: "+", tMinus: "-", tStar: "*", tSlash: "/", tPercent: "%",
	tLParen: "(", tRParen: ")", tLBrack: "[", tRBrack: "]", tComma: ",",
	tTrue: "true", tFalse: "false", tNull: "null",
}

type token struct {
	kind tokKind
	pos  int    // byte offset of the first byte
	text string // source text of the token
	str  string // decoded value of a string literal
}

// describe names a token for "unexpected ..." messages.
func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tIdent:
		return "identifier " + t.text
	case tInt, tFloat:
		return "number " + t.text
	case tString:
		return "string " + t.text
	}
	return "'" + opText[t.kind] + "'"
}

type lexer struct {
	src string
	pos int
}

func (lx *lexer) errAt(off int, format string, args ...any) *Error {
	return locAt(lx.src, off).errorf(format, args...)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// identRune reports whether the rune at src[i:] may continue an
// identifier, and its width.
func identRuneAt(s string, i int) (bool, int) {
	c := s[i]
	if c < utf8.RuneSelf {
		return c == '_' || isDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z'), 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && n == 1 {
		return false, 1
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r), n
}

// identStartAt reports whether an identifier may start at src[i:].
func identStartAt(s string, i int) bool {
	c := s[i]
	if c < utf8.RuneSelf {
		return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && n == 1 {
		return false
	}
	return unicode.IsLetter(r)
}

func (lx *lexer) next() (token, error) {
	src := lx.src
	for lx.pos < len(src) && isSpace(src[lx.pos]) {
		lx.pos++
	}
	start := lx.pos
	if start >= len(src) {
		return token{kind: tEOF, pos: len(src)}, nil
	}
	c := src[start]
	switch {
	case c == '"' || c == '\'':
		return lx.stringLit()
	case isDigit(c):
		return lx.number()
	case identStartAt(src, start):
		return lx.ident()
	}
	two := ""
	if start+1 < len(src) {
		two = src[start : start+2]
	}
	tok := func(k tokKind, n int) (token, error) {
		lx.pos = start + n
		return token{kind: k, pos: start, text: src[start : start+n]}, nil
	}
	switch c {
	case '(':
		return tok(tLParen, 1)
	case ')':
		return tok(tRParen, 1)
	case '[':
		return tok(tLBrack, 1)
	case ']':
		return tok(tRBrack, 1)
	case ',':
		return tok(tComma, 1)
	case '+':
		return tok(tPlus, 1)
	case '-':
		return tok(tMinus, 1)
	case '*':
		return tok(tStar, 1)
	case '/':
		return tok(tSlash, 1)
	case '%':
		return tok(tPercent, 1)
	case '=':
		if two == "==" {
			return tok(tEq, 2)
		}
		if start > 0 && strings.IndexByte("=!<>", src[start-1]) >= 0 {
			return token{}, lx.errAt(start, "unexpected '='")
		}
		return token{}, lx.errAt(start, "unexpected '='; use '==' for equality")
	case '!':
		if two == "!=" {
			return tok(tNe, 2)
		}
		return tok(tBang, 1)
	case '<':
		if two == "<=" {
			return tok(tLe, 2)
		}
		return tok(tLt, 1)
	case '>':
		if two == ">=" {
			return tok(tGe, 2)
		}
		return tok(tGt, 1)
	case '&':
		if two == "&&" {
			return tok(tAnd, 2)
		}
		return token{}, lx.errAt(start, "unexpected '&'; use '&&' for logical and")
	case '|':
		if two == "||" {
			return tok(tOr, 2)
		}
		return token{}, lx.errAt(start, "unexpected '|'; use '||' for logical or")
	}
	r, _ := utf8.DecodeRuneInString(src[start:])
	if r == utf8.RuneError {
		return token{}, lx.errAt(start, "invalid UTF-8 byte 0x%02x", c)
	}
	return token{}, lx.errAt(start, "unexpected character %q", r)
}

// ident lexes an identifier and any ".segment" suffixes into one token.
// Segments after a dot may start with a digit.
func (lx *lexer) ident() (token, error) {
	src := lx.src
	start := lx.pos
	i := start
	for i < len(src) {
		ok, n := identRuneAt(src, i)
		if !ok {
			break
		}
		i += n
	}
	switch src[start:i] {
	case "true", "false", "null", "in", "not":
		// A keyword never starts a path: "null.x" is null followed by '.'.
		return lx.keyword(start, i), nil
	}
	for i < len(src) && src[i] == '.' {
		j := i + 1
		for j < len(src) {
			ok, n := identRuneAt(src, j)
			if !ok {
				break
			}
			j += n
		}
		if j == i+1 {
			return token{}, lx.errAt(i, "expected field name after '.'")
		}
		i = j
	}
	lx.pos = i
	return token{kind: tIdent, pos: start, text: src[start:i]}, nil
}

func (lx *lexer) keyword(start, end int) token {
	lx.pos = end
	text := lx.src[start:end]
	kind := map[string]tokKind{"true": tTrue, "false": tFalse, "null": tNull, "in": tIn, "not": tNot}[text]
	return token{kind: kind, pos: start, text: text}
}

// number lexes digits [ "." digits ] [ ("e"|"E") ["+"|"-"] digits ].
func (lx *lexer) number() (token, error) {
	src := lx.src
	start := lx.pos
	i := start
	digits := func() {
		for i < len(src) && isDigit(src[i]) {
			i++
		}
	}
	digits()
	kind := tInt
	if i+1 < len(src) && src[i] == '.' && isDigit(src[i+1]) {
		i++
		digits()
		kind = tFloat
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		j := i + 1
		if j < len(src) && (src[j] == '+' || src[j] == '-') {
			j++
		}
		if j < len(src) && isDigit(src[j]) {
			i = j
			digits()
			kind = tFloat
		}
	}
	if i < len(src) {
		if ok, _ := identRuneAt(src, i); ok || src[i] == '.' {
			end := i
			for end < len(src) {
				ok, n := identRuneAt(src, end)
				if !ok && src[end] != '.' {
					break
				}
				end += n
			}
			return token{}, lx.errAt(start, "malformed number %q", src[start:end])
		}
	}
	lx.pos = i
	return token{kind: kind, pos: start, text: src[start:i]}, nil
}

// stringLit lexes a single- or double-quoted string with backslash
// escapes. Raw newlines are allowed inside the quotes.
func (lx *lexer) stringLit() (token, error) {
	src := lx.src
	start := lx.pos
	quote := src[start]
	i := start + 1
	var buf []byte // nil until the first escape
	chunk := i     // start of the not yet copied run
	for i < len(src) {
		c := src[i]
		if c == quote {
			var s string
			if buf == nil {
				s = src[chunk:i]
			} else {
				s = string(append(buf, src[chunk:i]...))
			}
			lx.pos = i + 1
			return token{kind: tString, pos: start, text: src[start : i+1], str: s}, nil
		}
		if c != '\\' {
			i++
			continue
		}
		if i+1 >= len(src) {
			break // unterminated
		}
		buf = append(buf, src[chunk:i]...)
		esc := src[i+1]
		n := 2
		switch esc {
		case 'n':
			buf = append(buf, '\n')
		case 't':
			buf = append(buf, '\t')
		case 'r':
			buf = append(buf, '\r')
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'v':
			buf = append(buf, '\v')
		case 'a':
			buf = append(buf, '\a')
		case '0':
			buf = append(buf, 0)
		case '\\', '"', '\'', '/':
			buf = append(buf, esc)
		case 'x', 'u', 'U':
			width := 2
			if esc == 'u' {
				width = 4
			} else if esc == 'U' {
				width = 8
			}
			var v uint64
			for k := 0; k < width; k++ {
				d, ok := hexVal(src, i+2+k)
				if !ok {
					return token{}, lx.errAt(i, "invalid escape sequence: \\%c needs %d hex digits", esc, width)
				}
				v = v<<4 | d
			}
			n += width
			if esc == 'x' {
				buf = append(buf, byte(v))
			} else {
				r := rune(v)
				if v > unicode.MaxRune || !utf8.ValidRune(r) {
					return token{}, lx.errAt(i, "invalid escape sequence: %s is not a valid code point", src[i:i+n])
				}
				buf = utf8.AppendRune(buf, r)
			}
		default:
			r, _ := utf8.DecodeRuneInString(src[i+1:])
			return token{}, lx.errAt(i, "unknown escape sequence \\%c", r)
		}
		i += n
		chunk = i
	}
	return token{}, lx.errAt(start, "unterminated string literal")
}

// hexVal returns the value of the hex digit at s[i], if there is one.
func hexVal(s string, i int) (uint64, bool) {
	if i >= len(s) {
		return 0, false
	}
	c := s[i]
	switch {
	case '0' <= c && c <= '9':
		return uint64(c - '0'), true
	case 'a' <= c && c <= 'f':
		return uint64(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return uint64(c-'A') + 10, true
	}
	return 0, false
}
