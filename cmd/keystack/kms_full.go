//go:build !keystack_lite

package main

// The AWS KMS half of kms.go that links the AWS SDK: the client options,
// the backend, reference checks and the discovery keyring. kms_lite.go
// stands in for it in the lite build, which hands these commands off.

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/kmsarn"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/keystore/awskms"
)

const defaultKMSTimeout = awskms.DefaultTimeout

// The AWS KMS errors that tui.go classifies.
var (
	errKMSAccessDenied    = awskms.ErrAccessDenied
	errKMSUnauthenticated = awskms.ErrUnauthenticated
	errKMSUnavailable     = awskms.ErrUnavailable
	kmsKeyErrors          = []error{awskms.ErrInvalidKeyID, awskms.ErrInvalidOptions, awskms.ErrNoEncryptKey}
)

// kmsErrorCode returns the AWS error code of a failed KMS call
// ("InvalidCiphertextException"); ok is false for any other error.
func kmsErrorCode(err error) (code string, ok bool) {
	var ke *awskms.KMSError
	if errors.As(err, &ke) {
		return ke.Code, true
	}
	return "", false
}

// newKMSBackend is the keystore's aws-kms backend with the flags' options.
func newKMSBackend(c *cli.Context) keystore.Backend { return awskms.NewBackend(kmsOptions(c)) }

// kmsTimeout is --kms-timeout, else $KEYSTACK_KMS_TIMEOUT (commands
// without the flag), else the default. An unusable value gets a warning
// and the default: it must never mean "wait forever".
func kmsTimeout(c *cli.Context) time.Duration {
	d, src := c.Duration("kms-timeout"), "--kms-timeout"
	if d == 0 && !c.IsSet("kms-timeout") {
		env, ok := os.LookupEnv(envKMSTimeout)
		if !ok || env == "" {
			return defaultKMSTimeout
		}
		var err error
		if d, err = time.ParseDuration(env); err != nil {
			d = 0
		}
		src = "$" + envKMSTimeout
	}
	if d <= 0 {
		warnf(c.App.ErrWriter, "%s: want a positive duration such as 10s; using %v", src, defaultKMSTimeout)
		return defaultKMSTimeout
	}
	return d
}

// kmsOptions returns the AWS KMS client options the flags ask for.
func kmsOptions(c *cli.Context) awskms.Options {
	return awskms.Options{
		Endpoint: c.String("kms-endpoint"), Region: c.String("region"), GrantTokens: c.StringSlice("grant-token"),
		Timeout: kmsTimeout(c),
	}
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
