package mailer

import (
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The settings, the keys of the plugin's `config:`, and their defaults.
const (
	settingDSN           = "dsn"
	settingDataDir       = "data_dir"
	settingSMTPAddr      = "smtp_addr"
	settingOutboxDir     = "outbox_dir"
	settingFrom          = "from"
	settingSMTPUser      = "smtp_user"
	settingSMTPPassword  = "smtp_password"
	settingSkipVerify    = "smtp_insecure_skip_verify"
	settingCAFile        = "smtp_ca_file"
	settingTemplates     = "templates"
	settingTimeout       = "timeout"
	settingClaimLease    = "claim_lease"
	defaultClaimLease    = 2 * time.Minute
	defaultFrom          = "billing@localhost"
	defaultTimeout       = 10 * time.Second
	defaultDataDir       = "./data"
	defaultDSN           = "embedded"
	maxMessageIDDomain   = 160
	settingsListForError = "dsn, data_dir, smtp_addr, outbox_dir, from, smtp_user, smtp_password, smtp_ca_file, smtp_insecure_skip_verify, templates, timeout, claim_lease"
)

// settings is the parsed configuration.
type settings struct {
	dsn, dataDir string
	// smtpAddr is host:port; empty for the outbox.
	smtpAddr, smtpHost string
	outboxDir          string
	// from is the sender as given; fromAddr its address, domain the
	// part after '@' (for Message-IDs).
	from     *mail.Address
	domain   string
	user     string
	password string
	insecure bool
	// roots are the CAs that verify the server's certificate: the
	// system's, plus smtp_ca_file's.
	roots *x509.CertPool
	// templates is a directory of overriding templates, or "".
	templates string
	timeout   time.Duration
	// lease is how long a claim on an email holds against other senders.
	lease time.Duration
}

// parseSettings reads the plugin's settings, reporting every bad one at
// once, each error naming its setting and wrapping ErrConfig.
func parseSettings(raw map[string]any) (settings, error) {
	s := settings{dsn: defaultDSN, dataDir: defaultDataDir, timeout: defaultTimeout, lease: defaultClaimLease}
	from := defaultFrom
	var errs []error
	bad := func(key string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrConfig, key, fmt.Sprintf(format, args...)))
	}
	str := func(key string, v any, dst *string) {
		switch v := v.(type) {
		case string:
			if v != "" { // "" (an unset ${VAR:-}) keeps the default
				*dst = v
			}
		case nil:
		default:
			bad(key, "want a string, got %T", v)
		}
	}
	// duration sets *dst from a positive duration; zero keeps the default.
	duration := func(key string, v any, dst *time.Duration) {
		d, err := parseDuration(v)
		if err != nil {
			bad(key, "%v", err)
		} else if d > 0 {
			*dst = d
		}
	}
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		v := raw[k]
		switch k {
		case settingDSN:
			str(k, v, &s.dsn)
		case settingDataDir:
			str(k, v, &s.dataDir)
		case settingSMTPAddr:
			str(k, v, &s.smtpAddr)
		case settingOutboxDir:
			str(k, v, &s.outboxDir)
		case settingFrom:
			str(k, v, &from)
		case settingSMTPUser:
			str(k, v, &s.user)
		case settingSMTPPassword:
			str(k, v, &s.password)
		case settingTemplates:
			str(k, v, &s.templates)
		case settingCAFile:
			var file string
			str(k, v, &file)
			if file == "" {
				break
			}
			roots, err := loadRoots(file)
			if err != nil {
				bad(k, "%v", err)
			}
			s.roots = roots
		case settingSkipVerify:
			b, err := parseBool(v)
			if err != nil {
				bad(k, "%v", err)
			}
			s.insecure = b
		case settingClaimLease:
			duration(k, v, &s.lease)
		case settingTimeout:
			duration(k, v, &s.timeout)
		default:
			bad(k, "unknown setting (want one of %s)", settingsListForError)
		}
	}
	if s.smtpAddr != "" {
		host, port, err := net.SplitHostPort(s.smtpAddr)
		if err != nil || host == "" || port == "" {
			bad(settingSMTPAddr, "want host:port, got %q", s.smtpAddr)
		}
		s.smtpHost = host
	}
	if s.password != "" && s.user == "" {
		bad(settingSMTPPassword, "given without %s", settingSMTPUser)
	}
	if s.user != "" && s.smtpAddr == "" {
		bad(settingSMTPUser, "given without %s", settingSMTPAddr)
	}
	if a, domain, err := parseFrom(from); err != nil {
		bad(settingFrom, "%v", err)
	} else {
		s.from, s.domain = a, domain
	}
	if s.outboxDir == "" {
		s.outboxDir = filepath.Join(s.dataDir, "outbox")
	}
	if s.templates != "" {
		if fi, err := os.Stat(s.templates); err != nil || !fi.IsDir() {
			bad(settingTemplates, "want a directory, got %q", s.templates)
			s.templates = "" // check the embedded ones
		}
	}
	return s, errors.Join(errs...)
}

// parseFrom reads the sender, an address with an optional name, and
// returns it with its domain, which must be plain ASCII: it goes into
// every Message-ID.
func parseFrom(from string) (*mail.Address, string, error) {
	a, err := mail.ParseAddress(from)
	if err != nil {
		return nil, "", fmt.Errorf("want an address such as \"Billing <billing@example.com>\", got %q: %w", from, err)
	}
	at := strings.LastIndexByte(a.Address, '@')
	domain := a.Address[at+1:]
	if at < 0 || domain == "" || len(domain) > maxMessageIDDomain || strings.Trim(domain, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != "" {
		return nil, "", fmt.Errorf("want an address with an ASCII domain of at most %d characters, got %q", maxMessageIDDomain, a.Address)
	}
	return a, domain, nil
}

func parseBool(v any) (bool, error) {
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		if v == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("want true or false, got %q", v)
		}
		return b, nil
	case nil:
		return false, nil
	}
	return false, fmt.Errorf("want true or false, got %T", v)
}

// parseDuration reads a Go duration ("10s"), or a number of seconds.
func parseDuration(v any) (time.Duration, error) {
	var d time.Duration
	switch v := v.(type) {
	case string:
		if v == "" {
			return 0, nil
		}
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, fmt.Errorf("want a duration such as \"10s\", got %q", v)
		}
	case int:
		d = time.Duration(v) * time.Second
	case int64:
		d = time.Duration(v) * time.Second
	case float64:
		d = time.Duration(v * float64(time.Second))
	case nil:
		return 0, nil
	default:
		return 0, fmt.Errorf("want a duration such as \"10s\", got %T", v)
	}
	if d <= 0 {
		return 0, fmt.Errorf("want a positive duration, got %v", v)
	}
	return d, nil
}

// loadRoots returns the system's certificate pool with the PEM
// certificates of file added.
func loadRoots(file string) (*x509.CertPool, error) {
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", file)
	}
	return roots, nil
}
