package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/audit/pgaudit"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/keystore/pgstorage"
	"github.com/keystack/keystack/rotation"
	"github.com/keystack/keystack/rotation/pglease"
)

// replicaFlags are the flags of a rotation daemon beside key-server
// replicas on PostgreSQL.
func replicaFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "storage", EnvVars: []string{"KEYSTACK_STORAGE"},
			Usage: "the store is in PostgreSQL at `URL` (postgres://…; the password best from PGPASSWORD or ~/.pgpass): run as one of several daemons, one leading"},
		&cli.StringFlag{Name: "replica-id", Usage: "this daemon's `NAME` among the replicas: its audit chain (default: the host name)"},
		&cli.DurationFlag{Name: "lease-ttl", Value: rotation.DefaultLeaseTTL,
			Usage: "with --storage: how long a leader that died or was paused keeps the others from taking over"},
	}
}

// replicaID is --replica-id, else the host name.
func replicaID(c *cli.Context) (string, error) {
	if id := c.String("replica-id"); id != "" {
		return id, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", usagef("no host name to name this replica by (%v): give --replica-id", err)
	}
	return h, nil
}

// withLeaderStore opens the store in PostgreSQL (--storage) for a rotation
// daemon: its writes fenced by the rotation lease it returns, its audit
// records on the chain rotate:ID. It closes everything after fn.
func withLeaderStore(c *cli.Context, fn func(st *keystore.Store, lease rotation.Lease) error) error {
	id, err := replicaID(c)
	if err != nil {
		return err
	}
	dir, err := homeDir(c)
	if err != nil {
		return err
	}
	// A paused daemon's writers' lock lasts no longer than its lease.
	pst, err := pgstorage.Open(c.Context, c.String("storage"), pgstorage.Options{LockLease: c.Duration("lease-ttl")})
	if err != nil {
		return err
	}
	defer pst.Close()
	dest, err := pgaudit.Connect(c.Context, c.String("storage"), "rotate:"+id)
	if err != nil {
		return err
	}
	defer dest.Pool.Close()
	lease := pglease.New(pst, holderName(id), c.Duration("lease-ttl"))
	st, err := keystore.Open(dir, keystore.OpenOptions{
		Passphrase:       passphraseSource(c.String("passphrase-file"), false),
		PassphraseTries:  passphraseTries(c.String("passphrase-file")),
		Backends:         backends(c),
		PrincipalFromEnv: true,
		Storage:          lease.Storage(),
		Audit:            dest,
	})
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st, lease)
}

// holderName is unique to this process: a restarted daemon takes the
// lease as a new holder, with a new epoch.
func holderName(id string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s:%d:%s:%d", id, os.Getpid(), hex.EncodeToString(b), time.Now().Unix())
}
