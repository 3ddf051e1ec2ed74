package main

// This file wires AWS KMS into the CLI: the flags of encrypt, decrypt and
// key create, the keystore's "aws-kms" backend, and the discovery keyring
// of decrypt --discovery. What links the AWS SDK is in kms_full.go, what
// links PKCS#11 in hsm_full.go.

import (
	"errors"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/internal/lazybackend"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keystore"
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
	return &cli.DurationFlag{Name: "kms-timeout", EnvVars: []string{envKMSTimeout}, Value: defaultKMSTimeout,
		Usage: "give up on a KMS call, retries included, after `DURATION`; an unreachable KMS fails the command within about this long"}
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

// externalBackends returns the keystore's AWS KMS and PKCS#11 backends.
// Neither loads AWS configuration nor a PKCS#11 module until a message is
// encrypted under one of its keys or carries one of its EDKs, so that
// decrypting without -k over a store that lists HSM or KMS keys needs no
// PIN and no credentials for messages those keys did not wrap.
// The app closes them when the command ends (see closeOnExit).
func externalBackends(c *cli.Context) map[string]keystore.Backend {
	kms := &lazybackend.Backend{Name: keystore.BackendAWSKMS, ProviderID: keyring.ProviderAWSKMS, Check: checkKMSRef,
		Open: func() keystore.Backend { return newKMSBackend(c) }}
	p11 := &lazybackend.Backend{Name: keystore.BackendPKCS11, ProviderID: keyring.ProviderPKCS11, Check: checkPKCS11Ref,
		Open: func() keystore.Backend { return newPKCS11Backend(c) }}
	closeOnExit(c, kms, p11)
	return map[string]keystore.Backend{keystore.BackendAWSKMS: kms, keystore.BackendPKCS11: p11}
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
			return backend, uri, checkTokenURI(uri)
		}
		return backend, uri, checkPKCS11Ref(uri)
	}
	return backend, generic, nil
}

// kmsFailure marks a failed KMS or PKCS#11 call while encrypting as a key
// error (exit 4): the key is missing or disabled. An unreachable backend
// (exit 6) and a KMS AccessDeniedException (exit 5, as a denial by the
// keystore's own policy) keep their own classes. Decryption failures already
// report every key tried and are classified by explainNoDecryptKey.
func kmsFailure(err error) error {
	_, kmsCall := kmsErrorCode(err)
	if (kmsCall || isPKCS11Call(err)) && !isAny(err, unavailableErrors) &&
		!errors.Is(err, errKMSAccessDenied) && !errors.Is(err, errKMSUnauthenticated) {
		return &codedError{code: exitKey, err: err}
	}
	return err
}
