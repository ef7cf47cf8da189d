// Package storetest opens stores for tests on both dialects: SQLite in the
// test's temporary directory, and MySQL in a fresh database on the MariaDB
// (or MySQL) server the project's machines run, dropped when the test ends.
//
// The MySQL server is BILLING_TEST_MYSQL_DSN (default
// "root@tcp(127.0.0.1:3306)/", the driver's DSN without a database). When
// it cannot be reached the tests fail, unless BILLING_TEST_MYSQL=off, which
// skips them.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/billing-engine/billing/engine/store"
)

// Dialects are the dialects every contract test runs on.
var Dialects = []store.Dialect{store.SQLite, store.MySQL}

// Each runs fn as a subtest per dialect, named after it, with a fresh
// store.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB), opts ...store.Option) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(string(d), func(t *testing.T) {
			fn(t, Open(t, d, opts...))
		})
	}
}

// Open returns a fresh, migrated store of dialect d, closed (and for MySQL
// dropped) when the test ends.
func Open(t testing.TB, d store.Dialect, opts ...store.Option) *store.DB {
	t.Helper()
	dsn := DSN(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := store.Open(ctx, dsn, opts...)
	if err != nil {
		t.Fatalf("open %s store: %v", d, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close %s store: %v", d, err)
		}
	})
	return db
}

// DSN returns the setting of a fresh, empty database of dialect d: a file
// in a temporary directory, or a new MySQL database dropped when the test
// ends.
func DSN(t testing.TB, d store.Dialect) string {
	t.Helper()
	if d == store.SQLite {
		return "sqlite:" + filepath.Join(t.TempDir(), "billing.db")
	}
	return MySQLDSN(t)
}

// MySQLDSN creates the database billing_test_<random> on the test server,
// drops it when the test ends, and returns its mysql:// setting.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	if strings.EqualFold(os.Getenv("BILLING_TEST_MYSQL"), "off") {
		t.Skip("BILLING_TEST_MYSQL=off: MySQL tests skipped")
	}
	server := os.Getenv("BILLING_TEST_MYSQL_DSN")
	if server == "" {
		server = "root@tcp(127.0.0.1:3306)/"
	}
	cfg, err := mysql.ParseDSN(server)
	if err != nil {
		t.Fatalf("BILLING_TEST_MYSQL_DSN: %v", err)
	}
	cfg.DBName = ""
	cfg.Timeout = 5 * time.Second
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatalf("mysql: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		_ = admin.Close()
		t.Fatalf("MySQL/MariaDB at %s not reachable (%v): start it, or set BILLING_TEST_MYSQL=off to skip the MySQL tests", cfg.Addr, err)
	}
	name := "billing_test_" + randomHex(6)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		_ = admin.Close()
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		_ = admin.Close()
	})
	cfg.DBName = name
	return "mysql://" + cfg.FormatDSN()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
