//go:build !keystack_lite

package main

// The replicas of a keystore in PostgreSQL (--storage): their audit
// chains and the rotation daemons' lease, which link internal/pgaudit and
// internal/pglease; the lite build hands these commands to keystack-full.

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/gate"
	"github.com/keystack/keystack/internal/pgaudit"
	"github.com/keystack/keystack/internal/pglease"
	"github.com/keystack/keystack/internal/pgstorage"
	"github.com/keystack/keystack/internal/rotationd"
	"github.com/keystack/keystack/keystore"
)

// defaultLeaseTTL is the default of --lease-ttl.
const defaultLeaseTTL = rotationd.DefaultLeaseTTL

// leaseKey keeps the rotation lease of a daemon's store in App.Metadata.
const leaseKey = "rotation-lease"

// replicaOptions completes the options of a store in PostgreSQL (--storage):
// its audit records go to the database, on the chain ROLE:ID of this
// process (server:ID for the key server, rotate:ID for the rotation
// daemon, cli:HOST for other commands); a command with --lease-ttl (the
// rotation daemon) writes through a Storage fenced by the rotation lease,
// which leaseOf returns. Without --storage it does nothing.
func replicaOptions(c *cli.Context, o *keystore.OpenOptions) error {
	pst, ok := o.Storage.(*pgstorage.Storage)
	if !ok {
		return nil
	}
	dest, err := replicaAudit(c)
	if err != nil {
		return err
	}
	o.Audit = dest
	if hasFlag(c, leaseTTLFlag.Name) {
		id, err := replicaID(c)
		if err != nil {
			return err
		}
		lease := pglease.New(pst, holderName(id), c.Duration(leaseTTLFlag.Name))
		c.App.Metadata[leaseKey] = lease
		o.Storage = lease.Storage()
	}
	return nil
}

// replicaAudit connects to the audit chain ROLE:ID in the --storage
// database of this process (see replicaOptions); it is closed when the
// command ends.
func replicaAudit(c *cli.Context) (gate.AuditDestination, error) {
	id, err := replicaID(c)
	if err != nil {
		return nil, err
	}
	role := "cli"
	switch c.Command.Name {
	case "server":
		role = "server"
	case "daemon":
		role = "rotate"
	}
	dsn, err := storageDSN(c)
	if err != nil {
		return nil, err
	}
	dest, err := pgaudit.Connect(c.Context, dsn, role+":"+id)
	if err != nil {
		return nil, err
	}
	closeOnExit(c, closerFunc(func() error { dest.Pool.Close(); return nil }))
	return dest, nil
}

// leaseOf returns the rotation lease replicaOptions made, nil without
// --storage.
func leaseOf(c *cli.Context) rotationd.Lease {
	if l, ok := c.App.Metadata[leaseKey].(*pglease.Lease); ok {
		return l
	}
	return nil
}

// hasFlag reports whether the command defines the flag.
func hasFlag(c *cli.Context, name string) bool {
	for _, f := range c.Command.Flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

// replicaID is --replica-id, else the host name.
func replicaID(c *cli.Context) (string, error) {
	if id := c.String(replicaIDFlag.Name); id != "" {
		return id, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", usagef("no host name to name this replica by (%v): give --replica-id", err)
	}
	return h, nil
}

// holderName is unique to this process: a restarted daemon takes the
// lease as a new holder, with a new epoch.
func holderName(id string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s:%d:%s:%d", id, os.Getpid(), hex.EncodeToString(b), time.Now().Unix())
}
