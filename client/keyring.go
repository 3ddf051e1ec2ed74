package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keystore/awskms"
)

// EncryptKeyring returns a keyring whose data keys the server generates
// under the first key of refs and wraps under every one (GenerateDataKey,
// Encrypt): messages carry aws-kms EDKs naming the server keys' ARNs, so
// the official AWS Encryption SDKs' KMS keyrings decrypt them through the
// same server. Each ref (as ShowKey takes it) is resolved once. With cache, data
// keys are reused within its limits (keyring.NewCaching), so a run of
// messages makes one server call per data key.
func (c *Client) EncryptKeyring(ctx context.Context, refs []string, cache *keyring.CacheOptions) (envelope.Keyring, error) {
	if len(refs) == 0 {
		return nil, fmt.Errorf("%w: no key to encrypt with", ErrInvalidConfig)
	}
	arns := make([]string, len(refs))
	for i, ref := range refs {
		var err error
		if arns[i], err = c.resolveKey(ctx, ref); err != nil {
			return nil, err
		}
	}
	return c.keyring(ctx, awskms.Options{KeyIDs: arns}, nil, cache)
}

// DecryptKeyring returns a keyring that asks the server to decrypt the
// aws-kms EDKs of the keys refs name, or with no refs any aws-kms EDK
// (the server refuses keys it does not hold). Messages written with a
// local keystore before the server carry keystack EDKs instead: the
// server's keystore unwraps those (KeystackAdmin.DecryptDataKey, under its
// policy), trying only the keys refs name, or all.
func (c *Client) DecryptKeyring(ctx context.Context, refs []string, cache *keyring.CacheOptions) (envelope.Keyring, error) {
	opts := awskms.Options{Discovery: len(refs) == 0}
	legacy := legacyKeyring{c: c}
	for _, ref := range refs {
		arn, err := c.resolveKey(ctx, ref)
		if err != nil {
			return nil, err
		}
		opts.KeyIDs = append(opts.KeyIDs, arn)
		// A server key's ID is its store key's name.
		_, id, _ := strings.Cut(arn, ":key/")
		legacy.keys = append(legacy.keys, id)
	}
	return c.keyring(ctx, opts, legacy, cache)
}

// keyring builds the awskms keyring opts describe, joined by extra when
// not nil, behind serverErrors and the cache.
func (c *Client) keyring(ctx context.Context, opts awskms.Options, extra envelope.Keyring, cache *keyring.CacheOptions) (envelope.Keyring, error) {
	cfg := c.aws.Copy()
	opts.Config, opts.Endpoint, opts.MaxAttempts, opts.Timeout = &cfg, placeholderEndpoint, 1, c.cfg.Timeout
	kr, err := awskms.New(ctx, opts)
	if err != nil {
		return nil, err
	}
	var out envelope.Keyring = serverErrors{kr}
	if extra != nil {
		out = keyring.NewMulti(out, extra)
	}
	if cache != nil {
		if out, err = keyring.NewCaching(out, *cache); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// serverErrors reports a server that no endpoint answered as the
// endpoints' own failures (UnavailableError) rather than as an AWS KMS
// Region that did not answer.
type serverErrors struct{ envelope.Keyring }

func (k serverErrors) OnEncrypt(ctx context.Context, m *envelope.EncryptionMaterials) error {
	return unavailable(k.Keyring.OnEncrypt(ctx, m))
}

func (k serverErrors) OnDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	err := k.Keyring.OnDecrypt(ctx, m, edks)
	var nerr *envelope.NoDecryptKeyError
	if errors.As(err, &nerr) {
		for i := range nerr.Attempts {
			nerr.Attempts[i].Err = unavailable(nerr.Attempts[i].Err)
		}
	}
	return err
}

func unavailable(err error) error {
	var ue *UnavailableError
	if errors.As(err, &ue) {
		return ue
	}
	return err
}
