package main

import (
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
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

// replicaIDFlag names a key-server replica or rotation daemon: its audit
// chain in the database.
var replicaIDFlag = &cli.StringFlag{Name: "replica-id",
	Usage: "with --storage: this process's `NAME` among the replicas, which names its audit chain (default: the host name)"}

// leaseTTLFlag is the rotation daemons' lease time.
var leaseTTLFlag = &cli.DurationFlag{Name: "lease-ttl", Value: defaultLeaseTTL,
	Usage: "with --storage: how long a leading daemon that died or was paused keeps the others from taking over"}

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
