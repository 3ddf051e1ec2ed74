//go:build !keystack_lite

package main

// The PostgreSQL half of storage.go, which links internal/pgstorage and
// through it pgx; the lite build hands every command given --storage to
// keystack-full (handoff_lite.go) and links services_lite.go instead.

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/internal/pgstorage"
	"github.com/keystack/keystack/keystore"
)

// The schema errors that tui.go classifies.
var (
	errSchemaOutdated = pgstorage.ErrSchemaOutdated
	errSchemaNewer    = pgstorage.ErrSchemaNewer
)

// openStorage opens the database of --storage (nil without one), first
// applying the schema migrations when migrate is set; it is closed when
// the command ends.
func openStorage(c *cli.Context, migrate bool) (keystore.Storage, error) {
	dsn, err := storageDSN(c)
	if dsn == "" || err != nil {
		return nil, err
	}
	if err := checkStorageArg(dsn); err != nil {
		return nil, err
	}
	if migrate {
		if _, err := pgstorage.Migrate(c.Context, dsn); err != nil {
			return nil, err
		}
	}
	opts := pgstorage.Options{MaxStale: c.Duration("storage-max-stale")}
	if hasFlag(c, leaseTTLFlag.Name) {
		// A rotation daemon paused holding the writers' lock keeps it no
		// longer than its leadership.
		opts.LockLease = c.Duration(leaseTTLFlag.Name)
	}
	st, err := pgstorage.Open(c.Context, dsn, opts)
	if err != nil {
		return nil, err
	}
	closeOnExit(c, closerFunc(func() error { st.Close(); return nil }))
	return st, nil
}

// migrateStorage applies the schema migrations of --storage, if given:
// keystack server does at start.
func migrateStorage(c *cli.Context) error {
	dsn, err := storageDSN(c)
	if dsn == "" || err != nil {
		return err
	}
	if err := checkStorageArg(dsn); err != nil {
		return err
	}
	_, err = pgstorage.Migrate(c.Context, dsn)
	return err
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// keywordPassword matches a password in a key=value connection string.
var keywordPassword = regexp.MustCompile(`(^|\s)password\s*=`)

// checkStorageArg refuses a password on the command line, where other
// users see it (ps, /proc): it belongs in PGPASSWORD, ~/.pgpass or
// $KEYSTACK_STORAGE. The same URL in both the variable and argv is
// still on the command line, and refused.
func checkStorageArg(dsn string) error {
	if dsn == os.Getenv(storageEnv) && !inArgv(dsn) {
		return nil
	}
	hasPassword := keywordPassword.MatchString(dsn)
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		_, set := u.User.Password()
		hasPassword = set || u.Query().Has("password")
	}
	if hasPassword {
		return usagef("--storage: the connection string holds a password, which the command line shows to every user: " +
			"put it in PGPASSWORD or ~/.pgpass, or the whole URL in $" + storageEnv)
	}
	return nil
}

// inArgv reports whether s is one of this process's arguments, alone or
// as the value of a --flag=VALUE argument.
func inArgv(s string) bool {
	for _, a := range os.Args[1:] {
		if a == s || strings.HasSuffix(a, "="+s) {
			return true
		}
	}
	return false
}

func migrateAction(c *cli.Context) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	dsn, err := storageDSN(c)
	if err != nil {
		return err
	}
	if dsn == "" {
		return usagef("server migrate needs --storage (or $%s)", storageEnv)
	}
	if err := checkStorageArg(dsn); err != nil {
		return err
	}
	applied, err := pgstorage.Migrate(c.Context, dsn)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(c.App.Writer, "schema version %d: already current\n", pgstorage.SchemaVersion)
		return nil
	}
	fmt.Fprintf(c.App.Writer, "schema version %d: applied migrations %v\n", pgstorage.SchemaVersion, applied)
	return nil
}
