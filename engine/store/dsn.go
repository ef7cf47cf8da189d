package store

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// target is a parsed database setting.
type target struct {
	dialect Dialect
	// path is the SQLite file.
	path string
	// mysql is the driver configuration.
	mysql *mysql.Config
	// desc describes the database for logs, without secrets.
	desc string
}

// parseDSN reads a database setting:
//
//	embedded                           SQLite at <dataDir>/billing.db
//	sqlite:PATH                        SQLite at PATH
//	mysql://user:pass@tcp(host:3306)/db[?param=value...]
//
// MySQL connections always parse timestamps in UTC, set the session time
// zone to UTC and use strict SQL mode; the parameters given are kept.
func parseDSN(dsn, dataDir string) (target, error) {
	switch {
	case dsn == "embedded" || dsn == "":
		p := filepath.Join(dataDir, "billing.db")
		return target{dialect: SQLite, path: p, desc: "embedded SQLite " + displayPath(p)}, nil
	case strings.HasPrefix(dsn, "sqlite:"):
		p := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "//")
		if p == "" || strings.ContainsRune(p, '?') {
			return target{}, fmt.Errorf("%w: sqlite: want a file path without '?'", ErrBadDSN)
		}
		return target{dialect: SQLite, path: p, desc: "SQLite " + displayPath(p)}, nil
	case strings.HasPrefix(dsn, "mysql://"):
		cfg, err := mysql.ParseDSN(strings.TrimPrefix(dsn, "mysql://"))
		if err != nil {
			// The driver's message may quote the DSN, password included.
			return target{}, fmt.Errorf("%w: mysql: want mysql://user:pass@tcp(host:3306)/db", ErrBadDSN)
		}
		if cfg.DBName == "" {
			return target{}, fmt.Errorf("%w: mysql: no database name (mysql://user:pass@tcp(host:3306)/db)", ErrBadDSN)
		}
		tuneMySQL(cfg)
		return target{dialect: MySQL, mysql: cfg, desc: fmt.Sprintf("MySQL %s@%s/%s", cfg.User, cfg.Addr, cfg.DBName)}, nil
	}
	return target{}, fmt.Errorf("%w: want \"embedded\", \"sqlite:PATH\" or \"mysql://user:pass@tcp(host:3306)/db\"", ErrBadDSN)
}

func tuneMySQL(cfg *mysql.Config) {
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	setDefault := func(k, v string) {
		if _, ok := cfg.Params[k]; !ok {
			cfg.Params[k] = v
		}
	}
	setDefault("time_zone", "'+00:00'")
	setDefault("sql_mode", "'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'")
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 60 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 60 * time.Second
	}
	cfg.Collation = "utf8mb4_unicode_ci"
	cfg.RejectReadOnly = true
}

// sqliteDSN is the modernc.org/sqlite DSN for path: WAL, a busy timeout
// so that several connections and processes wait for each other, full
// sync (a committed transaction survives power loss), foreign keys on.
// Writers begin IMMEDIATE, so a write transaction never fails half way on
// a lock upgrade.
func sqliteDSN(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return path + "?" + q.Encode()
}

// displayPath shows a relative path with a leading "./".
func displayPath(p string) string {
	if filepath.IsAbs(p) || strings.HasPrefix(p, ".") {
		return p
	}
	return "." + string(filepath.Separator) + p
}
