package pipeline

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// lookupEnv looks up an environment variable, like os.LookupEnv.
type lookupEnv func(name string) (value string, ok bool)

// interpolateTree replaces ${VAR}, ${VAR:-default} and $$ in every scalar
// value of the tree (mapping keys are left alone), reporting each problem
// at its position. A plain scalar whose text changed has its tag resolved
// again, so "${N:-8}" is the integer 8 wherever the type matters.
func interpolateTree(n *yaml.Node, lookup lookupEnv, src *source, errs *errorList) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			interpolateTree(c, lookup, src, errs)
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			interpolateTree(n.Content[i], lookup, src, errs)
		}
	case yaml.ScalarNode:
		interpolateScalar(n, lookup, src, errs)
	}
}

func interpolateScalar(n *yaml.Node, lookup lookupEnv, src *source, errs *errorList) {
	if !strings.Contains(n.Value, "$") {
		return
	}
	out, off, err := interpolate(n.Value, lookup)
	if err != nil {
		errs.add(src.valuePos(n, off), "%v", err)
		return
	}
	if out == n.Value {
		return
	}
	n.Value = out
	if n.Style&(yaml.TaggedStyle|yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		n.Tag = ""
		n.Tag = n.ShortTag()
	}
}

// interpolate expands s. "$$" is a literal "$"; "${NAME}" is the variable's
// value and an error when it is unset; "${NAME:-default}" is the value, or
// default when the variable is unset or empty (as in the shell). Any other
// "$" is kept as is. On error, off is the byte offset in s of the "${" at
// fault.
func interpolate(s string, lookup lookupEnv) (out string, off int, err error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$$"):
			b.WriteByte('$')
			i += 2
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", i, fmt.Errorf("unterminated %q: want ${NAME} or ${NAME:-default}", s[i:])
			}
			val, err := expand(s[i+2:i+end], lookup)
			if err != nil {
				return "", i, err
			}
			b.WriteString(val)
			i += end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), 0, nil
}

// expand resolves the text between "${" and "}".
func expand(ref string, lookup lookupEnv) (string, error) {
	name, def, hasDef := strings.Cut(ref, ":-")
	if !validEnvName(name) {
		return "", fmt.Errorf("${%s}: invalid variable name %q: want ${NAME} or ${NAME:-default}", ref, name)
	}
	val, ok := lookup(name)
	switch {
	case hasDef && val == "":
		return def, nil
	case !ok:
		return "", fmt.Errorf("${%s}: environment variable %s is not set (write ${%s:-default} to give a default)", ref, name, name)
	}
	return val, nil
}

// validEnvName reports whether name is [A-Za-z_][A-Za-z0-9_]*.
func validEnvName(name string) bool {
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	for _, c := range []byte(name) {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
