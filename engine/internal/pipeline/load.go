package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

// LoadOption configures Load and Parse.
type LoadOption func(*loadOptions)

type loadOptions struct {
	lookup lookupEnv
}

// WithLookupEnv makes Load read environment variables through lookup
// instead of os.LookupEnv, the default.
func WithLookupEnv(lookup func(name string) (value string, ok bool)) LoadOption {
	return func(o *loadOptions) { o.lookup = lookup }
}

// Load reads the pipeline file at path: it parses the YAML, interpolates
// ${VAR}, ${VAR:-default} and $$ in every value, decodes it strictly
// (unknown keys and wrong types are errors) and fills in defaults.
// Relative paths in the file (schemas, plugin commands, TLS files) are
// resolved against the file's directory.
//
// A problem in the file is returned as a List of every problem found,
// each an *Error at its file:line:column; the File is then nil. Load does
// not check references between parts of the file: call Validate for that.
func Load(path string, opts ...LoadOption) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	return Parse(path, data, opts...)
}

// Parse is Load for a file already read: path names it in errors and
// anchors its relative paths.
func Parse(path string, data []byte, opts ...LoadOption) (*File, error) {
	o := loadOptions{lookup: os.LookupEnv}
	for _, opt := range opts {
		opt(&o)
	}
	root, err := parseYAML(path, data)
	if err != nil {
		return nil, List{err}
	}
	errs := &errorList{file: path}
	f := &File{
		Path:  path,
		pos:   make(map[string]Pos),
		exprs: make(map[string]*yaml.Node),
		raw:   make(map[string]string),
		src:   newSource(data),
	}
	interpolateTree(root, o.lookup, f.src, errs)
	(&decoder{f: f, errs: errs}).file(root)
	if err := errs.list.err(); err != nil {
		return nil, err
	}
	f.applyDefaults()
	return f, nil
}

// parseYAML parses the single YAML document in data and returns its root.
func parseYAML(path string, data []byte) (root *yaml.Node, err *Error) {
	defer func() {
		// yaml.v3 has panicked on malformed input before; a pipeline file
		// is untrusted input, so a parser bug must not crash the engine.
		if r := recover(); r != nil {
			root, err = nil, &Error{File: path, Msg: fmt.Sprintf("yaml: cannot parse: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if e := dec.Decode(&doc); errors.Is(e, io.EOF) {
		return nil, &Error{File: path, Msg: "the file is empty: want a pipeline file (version: 1, pipelines: ...)"}
	} else if e != nil {
		return nil, syntaxError(path, e)
	}
	var extra yaml.Node
	if e := dec.Decode(&extra); e == nil {
		return nil, &Error{File: path, Line: extra.Line, Column: extra.Column, Msg: "a pipeline file holds one YAML document, found another"}
	} else if !errors.Is(e, io.EOF) {
		return nil, syntaxError(path, e)
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return &doc, nil
}
