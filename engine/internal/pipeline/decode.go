package pipeline

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decoder decodes an interpolated YAML tree into a File strictly: every
// unknown key and every value of the wrong type is reported at its
// position, and decoding goes on to report the rest. A value is recorded
// in File.pos only when it decoded, so that defaults fill the others.
type decoder struct {
	f    *File
	errs *errorList
	// entries counts the mapping and list entries walked, which aliases
	// can make far more than the file holds.
	entries int
}

// maxEntries bounds entries, against alias bombs ("billion laughs").
const maxEntries = 1 << 18

// walk counts the entries of the collection n and reports false, having
// said why once, when the file expands to too many.
func (d *decoder) walk(n *yaml.Node) bool {
	d.entries += len(n.Content)
	if d.entries <= maxEntries {
		return true
	}
	if d.entries-len(n.Content) <= maxEntries {
		d.errs.add(posOf(n), "the file expands to more than %d values: too many aliases", maxEntries)
	}
	return false
}

// field decodes the value of one known key; path names the key.
type field func(path string, key, val *yaml.Node)

// maxAliasDepth bounds alias chains, which may be cyclic.
const maxAliasDepth = 64

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < maxAliasDepth; i++ {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is absent: null, "~", or empty (such as an
// unset "${VAR:-}"). Absent values leave their field to its default.
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && (n.Value == "" || n.ShortTag() == "!!null")
}

func posOf(n *yaml.Node) Pos { return Pos{n.Line, n.Column} }

func (d *decoder) set(path string, n *yaml.Node) { d.f.pos[path] = posOf(n) }

// object decodes the mapping n with the given known keys.
func (d *decoder) object(path string, n *yaml.Node, fields map[string]field) {
	d.each(path, n, func(key string, k, v *yaml.Node) {
		fn, ok := fields[key]
		if !ok {
			d.unknownKey(path, key, k, fields)
			return
		}
		fn(joinPath(path, key), k, v)
	})
}

// each calls fn for every entry of the mapping n, checking that keys are
// strings and appear once.
func (d *decoder) each(path string, n *yaml.Node, fn func(key string, k, v *yaml.Node)) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.typeError(path, n, "a mapping")
		return
	}
	if !d.walk(n) {
		return
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errs.add(posOf(k), "%s: keys must be strings, got %s", section(path), describe(k))
			continue
		}
		if seen[k.Value] {
			d.errs.add(posOf(k), "%s: key %q appears more than once", section(path), k.Value)
			continue
		}
		seen[k.Value] = true
		fn(k.Value, k, v)
	}
}

func (d *decoder) unknownKey(path, key string, k *yaml.Node, fields map[string]field) {
	msg := fmt.Sprintf("unknown key %q in %s", key, section(path))
	if s := suggest(key, fields); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	d.errs.add(posOf(k), "%s", msg)
}

// list calls fn for every item of the sequence n.
func (d *decoder) list(path string, n *yaml.Node, fn func(path string, i int, item *yaml.Node)) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.typeError(path, n, "a list")
		return
	}
	if !d.walk(n) {
		return
	}
	for i, item := range n.Content {
		fn(fmt.Sprintf("%s[%d]", path, i), i, deref(item))
	}
}

func (d *decoder) typeError(path string, n *yaml.Node, want string) {
	d.errs.add(posOf(n), "%s: want %s, got %s", section(path), want, describe(n))
}

// scalar returns n's text, or false when n is absent or not a scalar.
func (d *decoder) scalar(path string, n *yaml.Node, want string) (string, bool) {
	n = deref(n)
	if isNull(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		d.typeError(path, n, want)
		return "", false
	}
	return n.Value, true
}

func (d *decoder) str(dst *string) field {
	return func(path string, _, v *yaml.Node) {
		if s, ok := d.scalar(path, v, "a string"); ok {
			*dst = s
			d.set(path, deref(v))
		}
	}
}

func (d *decoder) boolean(dst *bool) field {
	return func(path string, _, v *yaml.Node) {
		s, ok := d.scalar(path, v, "true or false")
		if !ok {
			return
		}
		switch s {
		case "true", "True", "TRUE":
			*dst = true
		case "false", "False", "FALSE":
			*dst = false
		default:
			d.typeError(path, deref(v), "true or false")
			return
		}
		d.set(path, deref(v))
	}
}

func (d *decoder) duration(dst *time.Duration) field {
	return func(path string, _, v *yaml.Node) {
		s, ok := d.scalar(path, v, "a duration such as 100ms or 30s")
		if !ok {
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.typeError(path, deref(v), "a duration such as 100ms or 30s")
			return
		}
		*dst = dur
		d.set(path, deref(v))
	}
}

// integer returns a field decoding an integer that fits in T.
func integer[T int | int16 | int32](d *decoder, dst *T) field {
	return func(path string, _, v *yaml.Node) {
		s, ok := d.scalar(path, v, "an integer")
		if !ok {
			return
		}
		i, err := strconv.ParseInt(s, 0, 64)
		switch {
		case err != nil:
			d.typeError(path, deref(v), "an integer")
		case int64(T(i)) != i:
			d.errs.add(posOf(deref(v)), "%s: %d is out of range", path, i)
		default:
			*dst = T(i)
			d.set(path, deref(v))
		}
	}
}

// strings decodes a list of strings; with split, a scalar is also
// accepted as a comma-separated list.
func (d *decoder) stringList(dst *[]string, split bool) field {
	return func(path string, k, v *yaml.Node) {
		if n := deref(v); split && n.Kind == yaml.ScalarNode {
			if s, ok := d.scalar(path, n, "a list"); ok {
				*dst = splitList(s)
				d.set(path, n)
			}
			return
		}
		var out []string
		d.list(path, v, func(path string, _ int, item *yaml.Node) {
			if s, ok := d.scalar(path, item, "a string"); ok {
				out = append(out, s)
			}
		})
		if out != nil || deref(v).Kind == yaml.SequenceNode {
			*dst = out
			d.set(path, deref(v))
		}
	}
}

// anyMap decodes a free-form mapping, such as a plugin's config.
func (d *decoder) anyMap(dst *map[string]any) field {
	return func(path string, _, v *yaml.Node) {
		n := deref(v)
		if isNull(n) {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.typeError(path, n, "a mapping")
			return
		}
		var m map[string]any
		if err := n.Decode(&m); err != nil {
			d.errs.add(posOf(n), "%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
			return
		}
		*dst = m
		d.set(path, n)
	}
}

func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// describe names a node's value for "got ..." in messages.
func describe(n *yaml.Node) string {
	switch deref(n).Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(deref(n).Value)
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// namePath is the path of a user-named entry, such as topics["x.dlq"].
func namePath(path, name string) string {
	return fmt.Sprintf("%s[%q]", path, name)
}

// section names a mapping for messages.
func section(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

// suggest returns the known key closest to key, if it is close.
func suggest(key string, fields map[string]field) string {
	best, bestDist := "", 3
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		if dist := editDistance(key, name); dist < bestDist {
			best, bestDist = name, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
