package expr

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Error is a problem in an expression, located inside its source.
//
// Compile and CompileBool return every compile error as an *Error, and
// Program.Eval and Program.EvalBool return every run-time error as an
// *Error too, located at the operator, operand or function argument that
// failed. Offset is a 0-based byte offset into the expression source, in
// the range [0, len(src)]; an error at the end of the input has Offset
// len(src). Column is the 1-based column of the same position counted in
// characters (Unicode code points; each invalid UTF-8 byte counts as one),
// so for ASCII sources Column == Offset+1. Msg has no "expr: " prefix and
// no position.
//
// Use errors.As to recover the *Error from a wrapped error.
type Error struct {
	Offset int    // 0-based byte offset in the source
	Column int    // 1-based character column in the source
	Msg    string // the problem, without prefix or position
}

// Error returns "expr: column N: msg".
func (e *Error) Error() string {
	return "expr: column " + strconv.Itoa(e.Column) + ": " + e.Msg
}

// loc is a precomputed position used to build run-time errors without
// keeping the source around.
type loc struct {
	off, col int
}

func locAt(src string, off int) loc {
	if off < 0 {
		off = 0
	}
	if off > len(src) {
		off = len(src)
	}
	return loc{off: off, col: utf8.RuneCountInString(src[:off]) + 1}
}

func (l loc) err(msg string) *Error {
	return &Error{Offset: l.off, Column: l.col, Msg: msg}
}

func (l loc) errorf(format string, args ...any) *Error {
	return l.err(fmt.Sprintf(format, args...))
}
