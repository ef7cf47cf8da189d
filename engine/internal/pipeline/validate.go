package pipeline

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"strings"

	"github.com/billing-engine/billing/engine/avro"
)

// ValidateOptions configures Validate. The zero value is ready to use.
type ValidateOptions struct {
	// Builtin names the plugins the engine has registered in-process; a
	// stage may use them without declaring them under plugins:. "branch"
	// is always builtin.
	Builtin map[string]bool
	// Schemas, when not nil, is the schema registry to check sources and
	// expressions against, instead of loading f.SchemasDir.
	Schemas *avro.Registry
}

// Validate checks a loaded file as a whole: names, topics, schemas,
// expressions, plugin binaries and settings. It reads the schema directory
// and the plugin binaries (to check they exist and, when pinned, hash
// them) but changes nothing.
//
// It returns nil, or a List of every problem found, each an *Error at the
// file:line:column of the value at fault (positions are zero for a File
// that was not loaded from a file).
func Validate(f *File, opts ValidateOptions) error {
	v := &validator{f: f, opts: opts, errs: &errorList{file: f.Path}}
	v.settings()
	v.kafka()
	v.topicOverrides()
	v.plugins()
	v.pipelines()
	return v.errs.list.err()
}

// validator holds the state of one Validate call.
type validator struct {
	f    *File
	opts ValidateOptions
	errs *errorList

	reg       *avro.Registry
	regLoaded bool
}

// at returns the position of the value at path or, when the file did not
// set it, of its nearest enclosing value that it did set.
func (v *validator) at(path string) Pos {
	for p := path; p != ""; p = parentPath(p) {
		if pos, ok := v.f.pos[p]; ok {
			return pos
		}
	}
	return Pos{}
}

func (v *validator) errorf(path, format string, args ...any) {
	v.errs.add(v.at(path), format, args...)
}

// parentPath strips the last element of a path: `a.b` -> `a`,
// `a[0]` -> `a`, `a["x.y"]` -> `a`.
func parentPath(p string) string {
	if strings.HasSuffix(p, `"]`) {
		if i := strings.LastIndex(p, `["`); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexAny(p, ".["); i >= 0 {
		return p[:i]
	}
	return ""
}

var (
	pipelineName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	simpleName   = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)
	topicName    = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	kafkaVersion = regexp.MustCompile(`^\d+\.\d+\.\d+(\.\d+)?$`)
)

// topicProblem returns why name is not a valid Kafka topic name, or "".
func topicProblem(name string) string {
	switch {
	case name == "":
		return "no topic given"
	case name == "." || name == "..":
		return fmt.Sprintf("%q is not a valid topic name", name)
	case !topicName.MatchString(name):
		return fmt.Sprintf("%q is not a valid topic name: use 1 to 249 letters, digits, '.', '_' or '-'", name)
	}
	return ""
}

// topic checks a topic name found at path; what prefixes the message.
func (v *validator) topic(path, what, name string) {
	if p := topicProblem(name); p != "" {
		v.errorf(path, "%s: %s", what, p)
	}
}

// settings checks the top-level, http and email settings.
func (v *validator) settings() {
	f := v.f
	if f.Version != 1 {
		v.errorf("version", "version: unsupported version %d: this engine reads version 1", f.Version)
	}
	if !simpleName.MatchString(f.ApplicationID) {
		v.errorf("application_id", "application_id: %q may use only letters, digits, '.', '_' and '-' (it prefixes topic and group names)", f.ApplicationID)
	}
	v.hostPort("http.listen", f.HTTP.Listen)
	if f.HTTP.APIReadToken != "" && f.HTTP.APIToken == "" {
		v.errorf("http.api_read_token", "http.api_read_token: needs http.api_token (without it the API is open to everyone)")
	}
	if f.HTTP.APIReadToken != "" && f.HTTP.APIReadToken == f.HTTP.APIToken {
		v.errorf("http.api_read_token", "http.api_read_token: must differ from http.api_token")
	}
	if u, err := url.Parse(f.HTTP.Advertise); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.errorf("http.advertise", "http.advertise: want an http:// or https:// URL, got %q", f.HTTP.Advertise)
	}
	if f.Email.SMTPAddr != "" {
		v.hostPort("email.smtp_addr", f.Email.SMTPAddr)
	}
	if _, err := mail.ParseAddress(f.Email.From); err != nil {
		v.errorf("email.from", "email.from: %q is not an email address", f.Email.From)
	}
}

// hostPort checks a host:port address at path.
func (v *validator) hostPort(path, addr string) {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		v.errorf(path, "%s: want host:port, got %q", path, addr)
	}
}
