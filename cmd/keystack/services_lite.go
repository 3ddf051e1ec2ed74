//go:build keystack_lite

package main

// The lite build's stand-ins for server_full.go, storage_full.go,
// replica_full.go and rotate_full.go: keystack server, server migrate,
// rotate run, rotate daemon and every command given --storage are handed
// to keystack-full before they run (handoff_lite.go), so these are
// reached only by a path that was missed, which then fails with
// errNotLinked.

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/gate"
	"github.com/keystack/keystack/keystore"
)

// server.DefaultRegion, server.DefaultAccount and rotationd.DefaultLeaseTTL,
// which the help shows (TestLiteBuild compares the builds' help texts).
const (
	defaultRegion   = "us-east-1"
	defaultAccount  = "111122223333"
	defaultLeaseTTL = 10 * time.Second
)

// No PostgreSQL error occurs in this build: nil matches no error.
var errSchemaOutdated, errSchemaNewer error

// The stand-ins' errors: keystack server (with its XKS proxy), the
// rotation runner and daemon, and PostgreSQL storage.
var (
	errServerNotLinked  = fmt.Errorf("keystack server is %w", errNotLinked)
	errRunnerNotLinked  = fmt.Errorf("the rotation runner (rotate run) is %w", errNotLinked)
	errDaemonNotLinked  = fmt.Errorf("the rotation daemon is %w", errNotLinked)
	errStorageNotLinked = fmt.Errorf("PostgreSQL storage (--storage) is %w", errNotLinked)
)

func serverRun(*cli.Context) error { return errServerNotLinked }

func migrateAction(*cli.Context) error { return errStorageNotLinked }

func rotateRunAction(*cli.Context) error { return errRunnerNotLinked }

func rotateDaemonAction(*cli.Context) error { return errDaemonNotLinked }

func openStorage(c *cli.Context, _ bool) (keystore.Storage, error) {
	if dsn, err := storageDSN(c); dsn != "" || err != nil {
		return nil, errStorageNotLinked
	}
	return nil, nil
}

func replicaOptions(*cli.Context, *keystore.OpenOptions) error { return nil } // no --storage: nothing to add

func replicaAudit(*cli.Context) (gate.AuditDestination, error) { return nil, errStorageNotLinked }
