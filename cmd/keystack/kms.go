package main

// This file wires AWS KMS into the CLI: the flags of encrypt, decrypt and
// key create, the keystore's "aws-kms" backend, and the discovery keyring
// of decrypt --discovery.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/hsm"
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
	kms := &lazyBackend{name: keystore.BackendAWSKMS, provider: awskms.ProviderID, check: checkARN,
		open: func() keystore.Backend { return awskms.NewBackend(kmsOptions(c)) }}
	p11 := &lazyBackend{name: keystore.BackendPKCS11, provider: hsm.DefaultNamespace, check: checkKeyURI,
		open: func() keystore.Backend { return hsm.NewBackend(hsmOptions(c)) }}
	closeOnExit(c, kms, p11)
	return map[string]keystore.Backend{keystore.BackendAWSKMS: kms, keystore.BackendPKCS11: p11}
}

// arnRE is the shape of a KMS key or alias ARN; awskms parses it fully.
var arnRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[A-Za-z0-9/_-]+$`)
})

// checkARN rejects what cannot be a KMS key ARN before any AWS setup.
func checkARN(ref string) error {
	if len(ref) > 2048 || !arnRE().MatchString(ref) {
		return fmt.Errorf("%w: want arn:PARTITION:kms:REGION:ACCOUNT:key/ID or alias/NAME", awskms.ErrInvalidKeyID)
	}
	return nil
}

// checkKeyURI rejects a PKCS#11 key URI that does not parse or names no object.
func checkKeyURI(ref string) error {
	u, err := hsm.ParseURI(ref)
	if err == nil && u.Object == "" {
		err = fmt.Errorf("%w: a key URI needs object=LABEL", hsm.ErrInvalidURI)
	}
	return err
}

// lazyBackend constructs its backend, and each key's keyring, on first use.
// It implements only Keyring and Close itself; the store reaches the
// backend's other methods through UnwrapBackend.
type lazyBackend struct {
	name     string // backend name, for errors (a reference may hold secrets)
	provider string // ESDK provider ID of the EDKs its keyrings write
	check    func(ref string) error
	open     func() keystore.Backend

	once    sync.Once
	backend keystore.Backend
}

var _ keystore.BackendUnwrapper = (*lazyBackend)(nil)

// Keyring checks ref's syntax now and resolves it when first used.
func (b *lazyBackend) Keyring(_ context.Context, ref string) (envelope.Keyring, error) {
	if err := b.check(ref); err != nil {
		return nil, err
	}
	return &lazyKeyring{b: b, ref: ref}, nil
}

// Close closes the backend if it was opened and can be closed: the
// PKCS#11 backend logs out of its tokens and finalizes the module.
func (b *lazyBackend) Close() error {
	b.once.Do(func() {}) // no backend opens after Close
	if cl, ok := b.backend.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// UnwrapBackend opens the backend, so that the store finds its optional
// capabilities (new key versions on the token, KMS on-demand and automatic
// rotation, destroying token objects): a lifecycle operation that needs one
// is the backend's first use. Nil after Close.
func (b *lazyBackend) UnwrapBackend() keystore.Backend { return b.get() }

func (b *lazyBackend) get() keystore.Backend {
	b.once.Do(func() { b.backend = b.open() })
	return b.backend
}

// lazyKeyring resolves ref through its backend when first needed; a
// failed resolution is retried at the next call.
type lazyKeyring struct {
	b   *lazyBackend
	ref string

	mu sync.Mutex
	kr envelope.Keyring
}

var errNoBackendEDK = errors.New("no encrypted data key of this backend")

func (k *lazyKeyring) keyring(ctx context.Context) (envelope.Keyring, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.kr == nil {
		kr, err := k.b.get().Keyring(ctx, k.ref)
		if err != nil {
			return nil, err
		}
		k.kr = kr
	}
	return k.kr, nil
}

func (k *lazyKeyring) OnEncrypt(ctx context.Context, m *envelope.EncryptionMaterials) error {
	kr, err := k.keyring(ctx)
	if err != nil {
		return err
	}
	return kr.OnEncrypt(ctx, m)
}

// OnDecrypt opens the backend only when an EDK has its provider ID.
func (k *lazyKeyring) OnDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	if !slices.ContainsFunc(edks, func(e envelope.EncryptedDataKey) bool { return e.ProviderID == k.b.provider }) {
		return &envelope.NoDecryptKeyError{Attempts: []envelope.KeyAttempt{
			{ProviderID: k.b.provider, KeyName: k.b.name, Err: errNoBackendEDK}}}
	}
	kr, err := k.keyring(ctx)
	if err != nil {
		return &envelope.NoDecryptKeyError{Attempts: []envelope.KeyAttempt{
			{ProviderID: k.b.provider, KeyName: k.b.name, Err: err}}}
	}
	return kr.OnDecrypt(ctx, m, edks)
}

// accountRE is an AWS account ID: twelve digits.
var accountRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]{12}$`) })

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
			if !accountRE().MatchString(a) {
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
	return st.DiscoveryKeyring(c.Context, kr, awskms.ProviderID)
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
		return backend, kmsKey, checkARN(kmsKey)
	case uri != "":
		if backend != keystore.BackendPKCS11 {
			return "", "", usagef("key create: --pkcs11-uri needs --backend %s", keystore.BackendPKCS11)
		}
		return backend, uri, checkKeyURI(uri)
	}
	return backend, generic, nil
}

// kmsFailure marks a failed KMS or PKCS#11 call while encrypting as a key
// error (exit 4): the key is missing, disabled or denied. An unreachable
// backend keeps its own class (exit 6). Decryption failures already
// report every key tried and are classified by explainNoDecryptKey.
func kmsFailure(err error) error {
	var ke *awskms.KMSError
	var ce *hsm.CallError
	if (errors.As(err, &ke) || errors.As(err, &ce)) && !isAny(err, unavailableErrors) {
		return &codedError{code: exitKey, err: err}
	}
	return err
}
