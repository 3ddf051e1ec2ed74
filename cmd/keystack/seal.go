package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/keystore"
)

// sealCommand is `keystack seal`: how the keystore's key-encryption key
// is protected (a passphrase, or a master key in a PKCS#11 token or AWS
// KMS: auto-unseal).
func sealCommand() *cli.Command {
	return &cli.Command{
		Name:  "seal",
		Usage: "show or change how the keystore is sealed (passphrase, or auto-unseal by a PKCS#11 or AWS KMS key)",
		Subcommands: []*cli.Command{{
			Name:   "show",
			Usage:  "print how the keystore is sealed",
			Flags:  []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
			Action: storeAction(0, 0, sealShowAction),
		}, {
			Name:      "set",
			Usage:     "reseal the keystore under a passphrase or a master key held outside it",
			ArgsUsage: "passphrase | pkcs11:URI | awskms:ARN",
			Description: "Needs the current seal (the passphrase, or access to the current master key). SEAL is\n" +
				"  passphrase        the new passphrase from --new-passphrase-file, $KEYSTACK_NEW_PASSPHRASE or a prompt\n" +
				"  pkcs11:URI        an AES key or RSA key pair on a PKCS#11 token (RFC 7512 URI with object=; the PIN\n" +
				"                    from the URI's pin-source or $KEYSTACK_PKCS11_PIN, never the URI itself)\n" +
				"  awskms:ARN        an AWS KMS key (credentials from the AWS SDK's usual chain)\n" +
				"With a master key the keystore opens without a passphrase wherever that key can be used\n" +
				"(keystack server starts unattended). Every change makes a new key-encryption key, seals\n" +
				"every key and credential again under it and replaces the keystore file in one atomic step:\n" +
				"a crash leaves the old seal or the new one working, never a mix. The change is audited.",
			Flags: append([]cli.Flag{passphraseFileFlag,
				&cli.StringFlag{Name: "new-passphrase-file", Usage: "with passphrase: read the new passphrase from the first line of `FILE`"},
				&cli.StringFlag{Name: "kdf", Usage: "with passphrase: argon2id (default) or scrypt"},
				&cli.StringFlag{Name: "module", EnvVars: []string{envPKCS11Module},
					Usage: "PKCS#11 module `PATH` when the URI has no module-path (default " + defaultPKCS11Module + ")"},
			}, kmsFlags()...),
			Action: storeAction(1, 1, sealSetAction),
		}},
	}
}

func sealShowAction(c *cli.Context, st *keystore.Store, _ []string) error {
	info, err := st.SealInfo()
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, map[string]string{"seal": info.Kind, "key": info.Ref})
	}
	fmt.Fprintf(c.App.Writer, "seal: %s\n", info.Kind)
	if info.Ref != "" {
		fmt.Fprintf(c.App.Writer, "key:  %s\n", info.Ref)
	}
	return nil
}

func sealSetAction(c *cli.Context, st *keystore.Store, a []string) error {
	opts, err := sealOptions(a[0], c.String("kdf"))
	if err != nil {
		return err
	}
	if err := st.Unlock(); err != nil { // the current seal, before asking for a new passphrase
		return err
	}
	if opts.Kind == keystore.SealPassphrase {
		if opts.Passphrase, err = newPassphrase(c.String("new-passphrase-file")); err != nil {
			return err
		}
		defer clear(opts.Passphrase)
	}
	if err := st.SetSeal(c.Context, opts); err != nil {
		return err
	}
	info, err := st.SealInfo()
	if err != nil {
		return err
	}
	if info.Kind == keystore.SealPassphrase {
		fmt.Fprintf(c.App.ErrWriter, "keystack: the keystore in %s is now sealed by a passphrase\n", st.Dir())
	} else { // the key as stored: an alias ARN resolved to its key ARN
		fmt.Fprintf(c.App.ErrWriter, "keystack: the keystore in %s is now sealed by the %s key %s (auto-unseal)\n", st.Dir(), info.Kind, info.Ref)
	}
	return nil
}

// sealOptions parses seal set's argument.
func sealOptions(arg, kdf string) (keystore.SealOptions, error) {
	switch {
	case arg == keystore.SealPassphrase:
		return keystore.SealOptions{Kind: keystore.SealPassphrase, KDF: kdf}, nil
	case kdf != "":
		return keystore.SealOptions{}, usagef("--kdf is for seal set passphrase")
	case strings.HasPrefix(arg, "pkcs11:"):
		return keystore.SealOptions{Kind: keystore.BackendPKCS11, Ref: arg}, nil
	case strings.HasPrefix(arg, "awskms:"), strings.HasPrefix(arg, "aws-kms:"):
		_, arn, _ := strings.Cut(arg, ":")
		return keystore.SealOptions{Kind: keystore.BackendAWSKMS, Ref: arn}, nil
	case strings.HasPrefix(arg, "arn:aws"):
		return keystore.SealOptions{Kind: keystore.BackendAWSKMS, Ref: arg}, nil
	}
	return keystore.SealOptions{}, usagef("seal set %q: want passphrase, pkcs11:URI or awskms:ARN", arg)
}
