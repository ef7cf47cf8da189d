package pipeline

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a pipeline file. It prints as
// "file:line:column: msg"; Line and Column are 1-based and zero when
// unknown, in which case they are left out.
type Error struct {
	File   string
	Line   int
	Column int
	Msg    string
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(":")
		if e.Column > 0 {
			b.WriteString(strconv.Itoa(e.Column))
			b.WriteString(":")
		}
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// List is every problem Load or Validate found, sorted by position. It
// prints one problem per line. Use errors.As to get it from an error.
type List []*Error

// Error implements error.
func (l List) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, so errors.As finds each *Error.
func (l List) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// err returns nil for an empty list, else the list sorted by position
// with duplicates removed.
func (l List) err() error {
	if len(l) == 0 {
		return nil
	}
	sorted := slices.Clone(l)
	slices.SortStableFunc(sorted, compareErrors)
	sorted = slices.CompactFunc(sorted, func(a, b *Error) bool { return *a == *b })
	return sorted
}

func compareErrors(a, b *Error) int {
	return cmp.Or(
		cmp.Compare(a.File, b.File),
		cmp.Compare(a.Line, b.Line),
		cmp.Compare(a.Column, b.Column),
		cmp.Compare(a.Msg, b.Msg),
	)
}

// errorList collects problems for one file.
type errorList struct {
	file string
	list List
}

func (l *errorList) add(p Pos, format string, args ...any) {
	l.list = append(l.list, &Error{File: l.file, Line: p.Line, Column: p.Column, Msg: fmt.Sprintf(format, args...)})
}

// yamlLine matches yaml.v3's syntax errors, "yaml: line 3: did not find ...".
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a yaml.v3 error into an *Error at its line.
func syntaxError(file string, err error) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Msg: "yaml: " + m[2]}
	}
	return &Error{File: file, Msg: msg}
}
