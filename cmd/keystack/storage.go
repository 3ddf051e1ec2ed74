package main

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/internal/pgstorage"
	"github.com/keystack/keystack/keystore"
)

// storageEnv names the environment variable --storage defaults to.
const storageEnv = "KEYSTACK_STORAGE"

// storageFlag is --storage: the keystore's keys, policy, server state and
// audit records live in a PostgreSQL database instead of the keystore
// directory. It is a global flag, and a flag of the commands that mostly
// need it (init, server, server migrate, rotate daemon); storageDSN reads
// it wherever on the command line it was given.
var storageFlag = &cli.StringFlag{Name: "storage", EnvVars: []string{storageEnv},
	Usage: "keep the keystore's keys and policy in the PostgreSQL database `URL` (postgres://USER@HOST/DB; default $" +
		storageEnv + "; the password from PGPASSWORD or ~/.pgpass, never the command line)"}

// storageMaxStaleFlag bounds how stale a server replica's view may be.
var storageMaxStaleFlag = &cli.DurationFlag{Name: "storage-max-stale", Value: time.Second,
	Usage: "with --storage: fail requests that need the keystore once the database has not confirmed it for this long"}

// storageDSN is the --storage URL the user gave, at whichever level of
// the command line: before the command (the global flag), after it, or
// after a parent command that defines the flag too (keystack server
// --storage URL credentials create). urfave/cli alone would read only the
// nearest command defining the flag, and miss the others. Two different
// URLs on one command line are a usage error; none is $KEYSTACK_STORAGE,
// else "" (the keystore directory).
func storageDSN(c *cli.Context) (string, error) {
	env := os.Getenv(storageEnv)
	given := ""
	for _, cc := range c.Lineage() {
		v := cc.String(storageFlag.Name)
		if v == "" || v == env || v == given {
			continue
		}
		if given != "" {
			return "", usagef("--storage is given twice with different URLs: give it once")
		}
		given = v
	}
	if given != "" {
		return given, nil
	}
	return env, nil
}

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

// storageName says where a store lives, for messages: the database's
// host and name (never a password), or the directory.
func storageName(c *cli.Context, dir string) string {
	dsn, err := storageDSN(c)
	if dsn == "" || err != nil {
		return dir
	}
	if u, err := url.Parse(dsn); err == nil && u.Host != "" {
		return "the PostgreSQL database " + strings.TrimPrefix(u.Path, "/") + " on " + u.Host
	}
	return "the PostgreSQL database of --storage"
}

// migrateCommand is `keystack server migrate`.
func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "apply the database schema migrations of --storage (keystack server also does, at start)",
		Description: "Brings the PostgreSQL database of --storage to this keystack's schema version. Safe to run\n" +
			"while replicas start or serve: migrators queue on an advisory lock and each migration\n" +
			"commits once, with its record, in one transaction.",
		Flags:  []cli.Flag{storageFlag},
		Action: migrateAction,
	}
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
