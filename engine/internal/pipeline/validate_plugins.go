package pipeline

import (
	"encoding/hex"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/billing-engine/billing/engine/internal/pluginhost"
)

// builtin reports whether the engine runs the plugin name in-process.
func (v *validator) builtin(name string) bool {
	return name == BuiltinBranch || v.opts.Builtin[name]
}

// plugins checks every declared plugin.
func (v *validator) plugins() {
	for _, name := range slices.Sorted(maps.Keys(v.f.Plugins)) {
		p := v.f.Plugins[name]
		path := namePath("plugins", name)
		if !simpleName.MatchString(name) {
			v.errorf(path, "plugin %q: names use only letters, digits, '.', '_' and '-'", name)
		}
		if p.Timeout <= 0 {
			v.errorf(path+".timeout", "plugin %q: timeout: want a positive duration, got %s", name, p.Timeout)
		}
		if p.SHA256 != "" && !isSHA256(p.SHA256) {
			v.errorf(path+".sha256", "plugin %q: sha256: want 64 hex digits, got %q", name, p.SHA256)
		}
		if p.Command == "" {
			if !v.builtin(name) {
				v.errorf(path, "plugin %q: no command given, and the engine has no in-process plugin of that name", name)
			}
			continue
		}
		v.command(path, p)
	}
}

// command checks a plugin's binary: a regular, executable file whose
// SHA-256 matches the pinned one.
func (v *validator) command(path string, p Plugin) {
	raw := v.rawPath(path+".command", p.Command)
	st, err := os.Stat(p.Command)
	switch {
	case err != nil:
		v.errorf(path+".command", "plugin %q: command %s: %s", p.Name, raw, fileProblem(err))
		return
	case !st.Mode().IsRegular():
		v.errorf(path+".command", "plugin %q: command %s: not a regular file", p.Name, raw)
		return
	case st.Mode().Perm()&0o111 == 0:
		v.errorf(path+".command", "plugin %q: command %s: not executable", p.Name, raw)
	}
	if !isSHA256(p.SHA256) {
		return
	}
	sum, err := pluginhost.FileSHA256(p.Command)
	switch {
	case err != nil:
		v.errorf(path+".command", "plugin %q: command %s: %s", p.Name, raw, fileProblem(err))
	case !strings.EqualFold(sum, p.SHA256):
		v.errorf(path+".sha256", "plugin %q: sha256: command %s has SHA-256 %s, want %s", p.Name, raw, sum, strings.ToLower(p.SHA256))
	}
}

func isSHA256(s string) bool {
	_, err := hex.DecodeString(s)
	return len(s) == 64 && err == nil
}
