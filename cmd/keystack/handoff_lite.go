//go:build keystack_lite

package main

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/keystore"
)

// addHandOff makes each command return errNeedsFull, before it does
// anything, when it is one of fullCommands or its flags or arguments ask
// for AWS KMS, a key server or a keystore in PostgreSQL.
// The keys a store holds are checked when it opens (storeNeedsFull).
func addHandOff(cmds []*cli.Command, prefix string) {
	for _, cmd := range cmds {
		path := strings.TrimSpace(prefix + " " + cmd.Name)
		addHandOff(cmd.Subcommands, path)
		if action := cmd.Action; action != nil {
			cmd.Action = func(c *cli.Context) error {
				if flagsNeedFull(c, path) {
					return errNeedsFull
				}
				return action(c)
			}
		}
	}
}

// fullCommands are the commands only keystack-full runs, whatever their
// flags: the key server and XKS proxy, the schema migration of --storage
// and the rotation daemon.
var fullCommands = map[string]bool{"server": true, "server migrate": true, "rotate daemon": true}

// flagsNeedFull reports fullCommands, --storage (or $KEYSTACK_STORAGE),
// server mode, KMS discovery, a KMS key to create or seal with, and -k
// naming a KMS key (as keystore's key specs do).
func flagsNeedFull(c *cli.Context, path string) bool {
	if dsn, err := storageDSN(c); fullCommands[path] || dsn != "" || err != nil {
		return true
	}
	if serverMode(c) || c.Bool("discovery") || c.IsSet("discovery-account") || c.IsSet("discovery-partition") ||
		c.IsSet("kms-key") || c.String("backend") == keystore.BackendAWSKMS {
		return true
	}
	for _, k := range c.StringSlice("key") {
		if strings.HasPrefix(k, "arn:aws") || strings.HasPrefix(k, keystore.BackendAWSKMS+":") {
			return true
		}
	}
	if path == "seal set" {
		seal, err := sealOptions(c.Args().First(), "")
		return err == nil && seal.Kind == keystore.BackendAWSKMS
	}
	return false
}

// storeNeedsFull is errNeedsFull for a store that lists an aws-kms key or
// is auto-unsealed by one. Opening a store asks for no passphrase, so this
// runs before any prompt.
func storeNeedsFull(st *keystore.Store) error {
	uses, err := st.UsesBackend(keystore.BackendAWSKMS)
	if err == nil && uses {
		err = errNeedsFull
	}
	return err
}
