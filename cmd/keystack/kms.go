package main

// This file wires AWS KMS into the CLI: the flags of encrypt, decrypt and
// key create, the keystore's "aws-kms" backend, and the discovery keyring
// of decrypt --discovery.

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/hsm"
	"github.com/keystack/keystack/internal/kmsarn"
	"github.com/keystack/keystack/internal/lazybackend"
	"github.com/keystack/keystack/internal/pkcs11token"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/keystore/awskms"
)

// kmsFlags configure the AWS KMS client of encrypt and decrypt. Credentials
// come from the AWS SDK's usual chain (environment, shared files, SSO,
// instance roles), never from flags.
func kmsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "kms-endpoint", EnvVars: []string{"AWS_ENDPOINT_URL_KMS"},
			Usage: "AWS KMS endpoint `URL` for every Region (default: the SDK's)"},
		&cli.StringSliceFlag{Name: "grant-token", Usage: "KMS grant token `T` sent with every KMS call (repeatable)"},
		&cli.StringFlag{Name: "region", Usage: "default AWS `REGION` (key ARNs name their own Region)"},
		kmsTimeoutFlag(),
	}
}

// envKMSTimeout sets --kms-timeout for every command, including those
// without the flag (rewrap, key rotate).
const envKMSTimeout = "KEYSTACK_KMS_TIMEOUT"

func kmsTimeoutFlag() cli.Flag {
	return &cli.DurationFlag{Name: "kms-timeout", EnvVars: []string{envKMSTimeout}, Value: awskms.DefaultTimeout,
		Usage: "give up on a KMS call, retries included, after `DURATION`; an unreachable KMS fails the command within about this long"}
}

// kmsTimeout is --kms-timeout, else $KEYSTACK_KMS_TIMEOUT (commands
// without the flag), else the default. An unusable value gets a warning
// and the default: it must never mean "wait forever".
func kmsTimeout(c *cli.Context) time.Duration {
	d, src := c.Duration("kms-timeout"), "--kms-timeout"
	if d == 0 && !c.IsSet("kms-timeout") {
		env, ok := os.LookupEnv(envKMSTimeout)
		if !ok || env == "" {
			return awskms.DefaultTimeout
		}
		var err error
		if d, err = time.ParseDuration(env); err != nil {
			d = 0
		}
		src = "$" + envKMSTimeout
	}
	if d <= 0 {
		warnf(c.App.ErrWriter, "%s: want a positive duration such as 10s; using %v", src, awskms.DefaultTimeout)
		return awskms.DefaultTimeout
	}
	return d
}

// discoveryFlags are decrypt's AWS KMS discovery flags
// (ESDK framework/aws-kms/aws-kms-discovery-keyring.md).
func discoveryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "discovery", Usage: "also decrypt with any AWS KMS key the credentials may use (see --discovery-account)"},
		&cli.StringSliceFlag{Name: "discovery-account", Usage: "with --discovery, only use KMS keys of AWS account `ID` (repeatable)"},
		&cli.StringFlag{Name: "discovery-partition", Usage: "with --discovery-account, the ARN `PARTITION` (default aws)"},
	}
}

// keyCreateFlags name the external key that key create registers.
func keyCreateFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "kms-key", Usage: "with --backend aws-kms, the KMS key `ARN` (key or alias ARN)"},
		&cli.StringFlag{Name: "pkcs11-uri", Usage: "with --backend pkcs11, the RFC 7512 `URI` of the HSM key (object= required, no pin-value)"},
		kmsTimeoutFlag(),
	}
}

// kmsOptions returns the AWS KMS client options the flags ask for.
func kmsOptions(c *cli.Context) awskms.Options {
	return awskms.Options{
		Endpoint: c.String("kms-endpoint"), Region: c.String("region"), GrantTokens: c.StringSlice("grant-token"),
		Timeout: kmsTimeout(c),
	}
}

// externalBackends returns the keystore's AWS KMS and PKCS#11 backends.
// Neither loads AWS configuration nor a PKCS#11 module until a message is
// encrypted under one of its keys or carries one of its EDKs, so that
// decrypting without -k over a store that lists HSM or KMS keys needs no
// PIN and no credentials for messages those keys did not wrap.
// The app closes them when the command ends (see closeOnExit).
func externalBackends(c *cli.Context) map[string]keystore.Backend {
	kms := &lazybackend.Backend{Name: keystore.BackendAWSKMS, ProviderID: keyring.ProviderAWSKMS, Check: checkKMSRef,
		Open: func() keystore.Backend { return awskms.NewBackend(kmsOptions(c)) }}
	p11 := &lazybackend.Backend{Name: keystore.BackendPKCS11, ProviderID: keyring.ProviderPKCS11, Check: pkcs11token.CheckKeyURI,
		Open: func() keystore.Backend { return hsm.NewBackend(hsmOptions(c)) }}
	closeOnExit(c, kms, p11)
	return map[string]keystore.Backend{keystore.BackendAWSKMS: kms, keystore.BackendPKCS11: p11}
}

// checkKMSRef rejects a key reference (a stored key's ref, -k ARN,
// --kms-key) that cannot be a KMS key or alias ARN, before any AWS setup.
func checkKMSRef(ref string) error {
	if !kmsarn.IsKeyRef(ref) {
		return fmt.Errorf("%w: want %s", awskms.ErrInvalidKeyID, kmsarn.KeyRefShape)
	}
	return nil
}

// discoveryKeyring returns decrypt's KMS discovery keyring, or nil without
// --discovery. With --discovery-account it admits only keys of those
// accounts in the partition; without, any key the credentials can use.
// The store gates it: each KMS key it would use is authorized and audited
// as keystack:Decrypt on key/ARN, as "-k ARN" is.
func discoveryKeyring(c *cli.Context, st *keystore.Store) (envelope.Keyring, error) {
	accounts, partition := c.StringSlice("discovery-account"), c.String("discovery-partition")
	if !c.Bool("discovery") {
		if len(accounts) > 0 || partition != "" {
			return nil, usagef("--discovery-account and --discovery-partition need --discovery")
		}
		return nil, nil
	}
	opts := kmsOptions(c)
	opts.Discovery = true
	if partition != "" && len(accounts) == 0 {
		return nil, usagef("--discovery-partition needs --discovery-account")
	}
	if len(accounts) > 0 {
		for _, a := range accounts {
			if !kmsarn.IsAccountID(a) {
				return nil, usagef("--discovery-account %q: want a 12-digit AWS account ID", a)
			}
		}
		if partition == "" {
			partition = "aws"
		}
		opts.DiscoveryFilter = &awskms.DiscoveryFilter{Partition: partition, AccountIDs: accounts}
	}
	kr, err := awskms.New(c.Context, opts)
	if err != nil {
		return nil, err
	}
	return st.DiscoveryKeyring(c.Context, kr, keyring.ProviderAWSKMS)
}

// createRef returns the backend and reference of key create: --kms-key
// and --pkcs11-uri are --ref spelled for their backend.
func createRef(c *cli.Context) (backend, ref string, err error) {
	backend = c.String("backend")
	kmsKey, uri, generic := c.String("kms-key"), c.String("pkcs11-uri"), c.String("ref")
	switch {
	case countSet(kmsKey, uri, generic) > 1:
		return "", "", usagef("key create: give one of --ref, --kms-key, --pkcs11-uri")
	case kmsKey != "":
		if backend != keystore.BackendAWSKMS {
			return "", "", usagef("key create: --kms-key needs --backend %s", keystore.BackendAWSKMS)
		}
		return backend, kmsKey, checkKMSRef(kmsKey)
	case c.Bool("generate") && (backend != keystore.BackendPKCS11 || uri == ""):
		return "", "", usagef("key create: --generate needs --backend %s and --pkcs11-uri naming the token", keystore.BackendPKCS11)
	case uri != "":
		if backend != keystore.BackendPKCS11 {
			return "", "", usagef("key create: --pkcs11-uri needs --backend %s", keystore.BackendPKCS11)
		}
		if c.Bool("generate") {
			_, err := pkcs11token.ParseURI(uri)
			return backend, uri, err
		}
		return backend, uri, pkcs11token.CheckKeyURI(uri)
	}
	return backend, generic, nil
}

// kmsFailure marks a failed KMS or PKCS#11 call while encrypting as a key
// error (exit 4): the key is missing or disabled. An unreachable backend
// (exit 6) and a KMS AccessDeniedException (exit 5, as a denial by the
// keystore's own policy) keep their own classes. Decryption failures already
// report every key tried and are classified by explainNoDecryptKey.
func kmsFailure(err error) error {
	var ke *awskms.KMSError
	var ce *pkcs11token.CallError
	if (errors.As(err, &ke) || errors.As(err, &ce)) && !isAny(err, unavailableErrors) &&
		!errors.Is(err, awskms.ErrAccessDenied) && !errors.Is(err, awskms.ErrUnauthenticated) {
		return &codedError{code: exitKey, err: err}
	}
	return err
}
