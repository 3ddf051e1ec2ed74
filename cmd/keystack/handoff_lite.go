//go:build keystack_lite

package main

import (
	"cmp"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/keystore"
)

// addHandOff makes each command return errNeedsFull, before it does
// anything, when it is one of fullCommands or its flags or arguments ask
// for AWS KMS, PKCS#11, a key server or a keystore in PostgreSQL. An OS
// user this build's os/user cannot name is handed off before that, by
// runApp (osUserNeedsFull).
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
// flags; a name also covers its subcommands: the key server and XKS
// proxy, the schema migration of --storage, the rotation daemon, the hsm
// commands, and rotate run, whose webhooks resolve host names as the
// complete build does, through the C library's NSS (mDNS,
// systemd-resolved), where this static build only reads /etc/hosts and DNS.
var fullCommands = map[string]bool{"server": true, "rotate daemon": true, "rotate run": true, "hsm": true}

// fullBackends are the key backends this build leaves out.
var fullBackends = []string{keystore.BackendAWSKMS, keystore.BackendPKCS11}

// flagsNeedFull reports fullCommands, --storage (or $KEYSTACK_STORAGE),
// server mode, KMS discovery, a KMS or PKCS#11 key to create or seal
// with, and -k naming a KMS or PKCS#11 key (as keystore's key specs do).
func flagsNeedFull(c *cli.Context, path string) bool {
	family, _, _ := strings.Cut(path, " ")
	if dsn, err := storageDSN(c); fullCommands[path] || fullCommands[family] || dsn != "" || err != nil {
		return true
	}
	if serverMode(c) || c.Bool("discovery") || c.IsSet("discovery-account") || c.IsSet("discovery-partition") ||
		c.IsSet("kms-key") || c.IsSet("pkcs11-uri") || c.IsSet("generate") || slices.Contains(fullBackends, c.String("backend")) {
		return true
	}
	for _, k := range c.StringSlice("key") {
		backend, _, spec := strings.Cut(k, ":")
		if strings.HasPrefix(k, "arn:aws") || spec && slices.Contains(fullBackends, backend) {
			return true
		}
	}
	if path == "seal set" {
		seal, err := sealOptions(c.Args().First(), "")
		return err == nil && slices.Contains(fullBackends, seal.Kind)
	}
	return false
}

// storeNeedsFull is errNeedsFull for a store that lists a key of one of
// fullBackends or is auto-unsealed by one. Opening a store asks for no
// passphrase, so this runs before any prompt.
func storeNeedsFull(st *keystore.Store) error {
	for _, backend := range fullBackends {
		if uses, err := st.UsesBackend(backend); err != nil || uses {
			return cmp.Or(err, errNeedsFull)
		}
	}
	return nil
}

// osUserNeedsFull reports an OS user that /etc/passwd does not list (one
// of LDAP, sssd or a systemd DynamicUser): without cgo, os/user reads only
// that file and would take the principal from $USER or the bare uid, and
// expand an argfile's ~ from $HOME alone, where the complete build asks
// NSS as the C library does. runApp hands such a user's every command
// off before it reads anything, argfiles included.
func osUserNeedsFull() bool {
	_, err := user.LookupId(strconv.Itoa(os.Getuid()))
	return err != nil
}
