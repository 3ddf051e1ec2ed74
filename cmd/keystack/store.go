package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/keystore"
)

// passphraseFileFlag is shared by every command that opens the keystore.
var passphraseFileFlag = &cli.StringFlag{
	Name:  "passphrase-file",
	Usage: "read the keystore passphrase from the first line of `FILE` (default $KEYSTACK_PASSPHRASE, else a terminal prompt)",
}

// homeDir is --home, else $KEYSTACK_HOME (cli reads it into --home), else
// the platform default.
func homeDir(c *cli.Context) (string, error) {
	if h := c.String("home"); h != "" {
		return h, nil
	}
	return defaultHome()
}

// defaultHome is the platform default keystore directory:
// os.UserConfigDir()/keystack.
func defaultHome() (string, error) {
	cfg, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no default keystore directory (set KEYSTACK_HOME or --home): %w", err)
	}
	return filepath.Join(cfg, "keystack"), nil
}

// openStore opens the keystore; the passphrase is asked for only if needed.
func openStore(c *cli.Context) (*keystore.Store, error) {
	dir, err := homeDir(c)
	if err != nil {
		return nil, err
	}
	storage, err := openStorage(c, false)
	if err != nil {
		return nil, err
	}
	// The OS user, unless the keystore was created to trust
	// $KEYSTACK_PRINCIPAL (PrincipalFromEnv).
	opts := keystore.OpenOptions{
		Storage:         storage,
		Passphrase:      armedPassphrase(c),
		PassphraseTries: passphraseTries(c.String("passphrase-file")),
		// A file is read again after another process resealed the store,
		// so a running server follows a passphrase change.
		RereadPassphrase: c.String("passphrase-file") != "",
		Backends:         backends(c),
		PrincipalFromEnv: true,
		Cache:            storeCache(c),
	}
	if err := replicaOptions(c, &opts); err != nil {
		return nil, err
	}
	st, err := keystore.Open(dir, opts)
	if err == nil {
		if err = storeNeedsFull(st); err != nil { // the lite build hands off before the command reads anything
			st.Close()
			return nil, err
		}
	}
	return st, err
}

// withStore opens the keystore the one way every command does (openStore),
// runs fn on it and closes it.
func withStore(c *cli.Context, fn func(st *keystore.Store) error) error {
	st, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st)
}

// storeAction is the action of a command that takes min..max positional
// arguments and works on the keystore: it checks the arguments and runs fn
// on the store withStore opens.
func storeAction(min, max int, fn func(c *cli.Context, st *keystore.Store, args []string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		a, err := args(c, min, max)
		if err != nil {
			return err
		}
		return withStore(c, func(st *keystore.Store) error { return fn(c, st, a) })
	}
}

// backends returns the extra key backends (AWS KMS, PKCS#11) to register
// with the keystore, keyed by backend name. The local backend is built in.
// They are wired in kms.go.
func backends(c *cli.Context) map[string]keystore.Backend {
	return externalBackends(c)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// armedPassphrase is the store's passphrase source; it arms the interrupt
// watch first, as a prompt may wait on the terminal.
func armedPassphrase(c *cli.Context) func() ([]byte, error) {
	source := passphraseSource(c.String("passphrase-file"), false)
	return func() ([]byte, error) {
		armInterrupts(c)
		return source()
	}
}
