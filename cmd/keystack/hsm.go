package main

// This file declares the "keystack hsm" commands and the PKCS#11 module
// flag, the same in both builds. What links the PKCS#11 library (the
// keystore's "pkcs11" backend, the PIN prompt, the commands' actions) is
// in hsm_full.go; the lite build hands those commands off (hsm_lite.go).

import "github.com/urfave/cli/v2"

// Where the PKCS#11 module comes from when the URI has no module-path.
const (
	envPKCS11Module     = "KEYSTACK_PKCS11_MODULE"
	defaultPKCS11Module = "/usr/lib/softhsm/libsofthsm2.so"
)

// hsmFlags are shared by the hsm commands.
func hsmFlags(extra ...cli.Flag) []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "pkcs11-uri", Usage: "RFC 7512 `URI` of the token (token=, and pin-source= or $KEYSTACK_PKCS11_PIN)"},
		&cli.StringFlag{Name: "module", EnvVars: []string{envPKCS11Module},
			Usage: "PKCS#11 module `PATH` when the URI has no module-path (default " + defaultPKCS11Module + ")"},
	}, extra...)
}

func hsmCommand() *cli.Command {
	return &cli.Command{
		Name:  "hsm",
		Usage: "manage keys on a PKCS#11 token",
		Description: "The token is named by --pkcs11-uri. The PIN is read from the URI's pin-source file,\n" +
			"$KEYSTACK_PKCS11_PIN or a terminal prompt; never from an argument. Key values never\n" +
			"leave the token.",
		Subcommands: []*cli.Command{
			{
				Name: "keygen", Usage: "generate a non-extractable key on the token",
				Flags: hsmFlags(
					&cli.StringFlag{Name: "type", Value: "aes-256", Usage: "aes-256, rsa-3072 or rsa-4096"},
					&cli.StringFlag{Name: "label", Usage: "object `LABEL` (default: the URI's object=)"},
					&cli.StringFlag{Name: "id", Usage: "object ID as `HEX`"},
				),
				Action: hsmKeygenAction,
			},
			{
				Name: "list", Usage: "list the token's key objects (never their values)",
				Flags:  hsmFlags(&cli.BoolFlag{Name: "json", Usage: "print JSON"}),
				Action: hsmListAction,
			},
			{
				Name: "export-public", Usage: "print an RSA key pair's public key as PEM",
				Flags:  hsmFlags(&cli.StringFlag{Name: "label", Usage: "object `LABEL` (default: the URI's object=)"}),
				Action: hsmExportAction,
			},
		},
	}
}
