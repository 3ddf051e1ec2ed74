package main

// Options that match the AWS Encryption CLI's (aws-encryption-sdk-cli), so
// that its pipelines move to keystack with the same flags; the README's
// table maps every one of its flags.

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/envelope"
)

// Commitment policies, as the AWS Encryption CLI names them.
const (
	policyForbidEncrypt  = "forbid-encrypt-allow-decrypt"
	policyAllowDecrypt   = "require-encrypt-allow-decrypt"
	policyRequireDecrypt = "require-encrypt-require-decrypt"
)

var commitmentPolicyFlag = &cli.StringFlag{Name: "commitment-policy", Value: policyRequireDecrypt,
	Usage: "`POLICY`: require-encrypt-require-decrypt (default: committing suites only), require-encrypt-allow-decrypt " +
		"(decrypt also reads legacy suites, as --allow-legacy) or forbid-encrypt-allow-decrypt (refused by encrypt: keystack writes only committing messages)"}

// verbosityFlags are -v (information) and -vv (details); -vvv and -vvvv
// are accepted as -vv, as the AWS Encryption CLI accepts up to four.
func verbosityFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "v", Usage: "say what is done with each file on stderr (-vv: also each header's suite, keys and context)"},
		&cli.BoolFlag{Name: "vv", Hidden: true},
		&cli.BoolFlag{Name: "vvv", Hidden: true},
		&cli.BoolFlag{Name: "vvvv", Hidden: true},
	}
}

// esdkEncryptFlags are encrypt's AWS Encryption CLI options.
func esdkEncryptFlags() []cli.Flag {
	return append(metadataFlags(), commitmentPolicyFlag,
		&cli.StringFlag{Name: "algorithm", Usage: "algorithm suite `NAME`: AES_256_GCM_HKDF_SHA512_COMMIT_KEY (default) or " +
			"AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384 (as --signed)"},
		&cli.IntFlag{Name: "max-encrypted-data-keys", Usage: "refuse to write a message with more than `N` encrypted data keys (0: no limit)"},
	)
}

// esdkDecryptFlags are decrypt's AWS Encryption CLI options.
func esdkDecryptFlags() []cli.Flag {
	return append(metadataFlags(), commitmentPolicyFlag,
		&cli.BoolFlag{Name: "decrypt-unsigned", Usage: "refuse signed messages, before any key is used"},
	)
}

// verbosity is 0, 1 (-v) or 2 (-vv and more).
func verbosity(c *cli.Context) int {
	switch {
	case c.Bool("vv") || c.Bool("vvv") || c.Bool("vvvv"):
		return 2
	case c.Bool("v"):
		return 1
	}
	return 0
}

// infof writes an -v message (level 1) or -vv message (level 2) to w.
func infof(c *cli.Context, level int, format string, a ...any) {
	if verbosity(c) >= level {
		fmt.Fprintf(c.App.ErrWriter, "keystack: info: "+format+"\n", a...)
	}
}

// encryptSuite resolves --algorithm, --signed and --commitment-policy.
func encryptSuite(c *cli.Context) (envelope.Suite, error) {
	switch p := c.String("commitment-policy"); p {
	case policyRequireDecrypt, policyAllowDecrypt:
	case policyForbidEncrypt:
		return 0, usagef("--commitment-policy %s: keystack writes only key-committing messages "+
			"(suites AES_256_GCM_HKDF_SHA512_COMMIT_KEY*); use require-encrypt-require-decrypt", p)
	default:
		return 0, badPolicy(p)
	}
	suite := envelope.SuiteCommitted
	if c.Bool("signed") {
		suite = envelope.SuiteCommittedSigned
	}
	name := c.String("algorithm")
	if name == "" {
		return suite, nil
	}
	s, ok := suiteByName(name)
	switch {
	case !ok:
		return 0, usagef("--algorithm %q: not an AWS Encryption SDK algorithm suite name", name)
	case !s.Committing():
		return 0, usagef("--algorithm %s: a legacy suite without key commitment, which keystack never writes; "+
			"use AES_256_GCM_HKDF_SHA512_COMMIT_KEY or AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384", name)
	case c.Bool("signed") && !s.Signed():
		return 0, usagef("--signed contradicts --algorithm %s (unsigned)", name)
	}
	return s, nil
}

// decryptAllowsLegacy resolves --commitment-policy and --allow-legacy.
func decryptAllowsLegacy(c *cli.Context) (bool, error) {
	switch p := c.String("commitment-policy"); p {
	case policyRequireDecrypt:
		if c.Bool("allow-legacy") && c.IsSet("commitment-policy") {
			return false, usagef("--allow-legacy contradicts --commitment-policy %s", p)
		}
		return c.Bool("allow-legacy"), nil
	case policyAllowDecrypt, policyForbidEncrypt:
		return true, nil
	default:
		return false, badPolicy(p)
	}
}

func badPolicy(p string) error {
	return usagef("--commitment-policy %q: want %s, %s or %s", p, policyRequireDecrypt, policyAllowDecrypt, policyForbidEncrypt)
}

// suiteByName accepts the ESDK specification's names and the Python
// ESDK's (which drop "_NO_KDF").
func suiteByName(name string) (envelope.Suite, bool) {
	for id := 0; id <= 0xFFFF; id++ {
		s := envelope.Suite(id)
		if s.Known() && (s.String() == name || pythonSuiteName(s) == name) {
			return s, true
		}
	}
	return 0, false
}

// parseDecryptContext splits decrypt's -c arguments into KEY=VALUE pairs
// and bare KEYs, which the message's context must hold with any value (as
// the AWS Encryption CLI's decrypt -c KEY).
func parseDecryptContext(args []string) (map[string]string, []string, error) {
	var pairs, keys []string
	for _, a := range args {
		if strings.Contains(a, "=") {
			pairs = append(pairs, a)
		} else if a != "" {
			keys = append(keys, a)
		} else {
			return nil, nil, usagef("--context \"\": want KEY=VALUE or KEY")
		}
	}
	ec, err := parseContext(pairs)
	return ec, keys, err
}

// checkContextKeys fails unless the header's context has every key.
func checkContextKeys(h *envelope.Header, keys []string) error {
	for _, k := range keys {
		if _, ok := h.EncryptionContext[k]; !ok {
			return fmt.Errorf("%w: the message's encryption context has no key %q (-c %s)", envelope.ErrContextMismatch, k, k)
		}
	}
	return nil
}

// version is set at link time (-ldflags "-X main.version=v1.2.3"); by
// default it is the module version the binary was built from.
var version = ""

// versionString is what --version prints.
func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "" {
		v = bi.Main.Version
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	return "keystack " + v
}

// printVersion is cli's version printer.
func printVersion(c *cli.Context) {
	fmt.Fprintln(c.App.Writer, versionString(), runtime.Version())
}
