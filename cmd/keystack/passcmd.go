package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/keystore"
)

// envNewPassphrase is passphrase change's counterpart of $KEYSTACK_PASSPHRASE.
const envNewPassphrase = "KEYSTACK_NEW_PASSPHRASE"

func passphraseCommand() *cli.Command {
	return &cli.Command{
		Name:  "passphrase",
		Usage: "manage the keystore passphrase",
		Subcommands: []*cli.Command{{
			Name:  "change",
			Usage: "reseal the keystore under a new passphrase",
			Description: "Needs the current passphrase (--passphrase-file, $KEYSTACK_PASSPHRASE or a prompt) and\n" +
				"takes the new one from --new-passphrase-file, $KEYSTACK_NEW_PASSPHRASE or a prompt (asked\n" +
				"twice). Every key's material is sealed again under a key derived from the new passphrase\n" +
				"with a new salt, and the keystore file is replaced in one atomic step: a crash leaves the\n" +
				"old passphrase or the new one working, never a mix. The change is audited.",
			Flags: []cli.Flag{passphraseFileFlag,
				&cli.StringFlag{Name: "new-passphrase-file", Usage: "read the new passphrase from the first line of `FILE`"},
			},
			Action: storeAction(0, 0, passphraseChangeAction),
		}},
	}
}

func passphraseChangeAction(c *cli.Context, st *keystore.Store, _ []string) error {
	if err := st.Unlock(); err != nil { // before asking for the new one
		return err
	}
	newPass, err := newPassphrase(c.String("new-passphrase-file"))
	if err != nil {
		return err
	}
	defer clear(newPass)
	if err := st.ChangePassphrase(c.Context, newPass); err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "keystack: passphrase changed for the keystore in %s\n", st.Dir())
	return nil
}

// newPassphrase reads the new passphrase: the file, the variable, else a
// prompt asked twice.
func newPassphrase(file string) ([]byte, error) {
	if file != "" {
		return readPassphraseFile(file)
	}
	if p := os.Getenv(envNewPassphrase); p != "" {
		return []byte(p), nil
	}
	return promptPassphrase(passphrasePrompt{label: "new passphrase", confirm: true})
}
