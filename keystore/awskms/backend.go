package awskms

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keystack/keystack/envelope"
)

// Backend hands out strict keyrings for single KMS keys, all sharing one
// AWS configuration and one client per Region. It is the keystore's
// backend for keys held in AWS KMS. It is safe for concurrent use.
type Backend struct {
	opts Options

	mu      sync.Mutex
	clients *clients
}

// NewBackend returns a backend using opts for credentials, endpoint, grant
// tokens and retries; opts.KeyIDs and discovery settings are ignored. The
// AWS configuration is loaded on first use.
func NewBackend(opts Options) *Backend {
	opts.KeyIDs, opts.Discovery, opts.DiscoveryFilter = nil, false, nil
	return &Backend{opts: opts}
}

func (b *Backend) getClients(ctx context.Context) (*clients, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.clients == nil {
		c, err := loadClients(ctx, &b.opts)
		if err != nil {
			return nil, err // not cached: a later call may succeed
		}
		b.clients = c
	}
	return b.clients, nil
}

// Keyring returns a strict keyring for ref, a key ARN or alias ARN. An
// alias ARN is resolved to its key ARN first (DescribeKey), because
// messages name the key ARN: a keyring for an alias ARN, such as a store
// key registered by alias before key create resolved aliases, then
// decrypts the messages it encrypts.
func (b *Backend) Keyring(ctx context.Context, ref string) (envelope.Keyring, error) {
	if key, err := parseARN(ref); err == nil && !key.isKey() {
		if ref, err = b.ResolveRef(ctx, ref); err != nil {
			return nil, err
		}
	}
	return b.keyring(ctx, ref)
}

func (b *Backend) keyring(ctx context.Context, ref string) (*Keyring, error) {
	key, err := parseARN(ref)
	if err != nil {
		return nil, err
	}
	c, err := b.getClients(ctx)
	if err != nil {
		return nil, err
	}
	return newKeyring([]keyARN{key}, &b.opts, c), nil
}

// client returns the client for the Region of keyARN, and the key ARN to
// send: the rotation operations take a key ID or key ARN but no alias, so
// an alias ARN is resolved with DescribeKey first.
func (b *Backend) client(ctx context.Context, ref string) (*kms.Client, keyARN, error) {
	key, err := parseARN(ref)
	if err != nil {
		return nil, keyARN{}, err
	}
	c, err := b.getClients(ctx)
	if err != nil {
		return nil, keyARN{}, err
	}
	cl := c.get(key.region)
	if key.isKey() {
		return cl, key, nil
	}
	out, err := cl.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key.raw)})
	if err != nil {
		return nil, keyARN{}, kmsError("DescribeKey", key.raw, err)
	}
	if out.KeyMetadata == nil {
		return nil, keyARN{}, fmt.Errorf("%w: DescribeKey of %s returned no key", ErrInvalidKeyID, key.raw)
	}
	if key, err = parseARN(aws.ToString(out.KeyMetadata.Arn)); err != nil || !key.isKey() {
		return nil, keyARN{}, fmt.Errorf("%w: DescribeKey of %s returned no key ARN", ErrInvalidKeyID, ref)
	}
	return cl, key, nil
}

// EnableRotation turns on automatic rotation of the key every periodDays
// (KMS accepts 90 to 2560) with EnableKeyRotation.
func (b *Backend) EnableRotation(ctx context.Context, keyARN string, periodDays int) error {
	c, key, err := b.client(ctx, keyARN)
	if err != nil {
		return err
	}
	_, err = c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(key.raw), RotationPeriodInDays: aws.Int32(int32(periodDays))})
	if err != nil {
		return kmsError("EnableKeyRotation", key.raw, err)
	}
	return nil
}

// RotateOnDemand rotates the key's material now with RotateKeyOnDemand.
// Data keys wrapped under earlier material still decrypt.
func (b *Backend) RotateOnDemand(ctx context.Context, keyARN string) error {
	c, key, err := b.client(ctx, keyARN)
	if err != nil {
		return err
	}
	if _, err := c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(key.raw)}); err != nil {
		return kmsError("RotateKeyOnDemand", key.raw, err)
	}
	return nil
}

// ResolveRef implements keystore.RefResolver: an alias ARN becomes the key
// ARN it names now (DescribeKey), because messages record the key ARN and
// a strict keyring decrypts only EDKs of the key ARNs it holds. A key ARN
// is returned as is, without a KMS call.
func (b *Backend) ResolveRef(ctx context.Context, ref string) (string, error) {
	_, key, err := b.client(ctx, ref)
	if err != nil {
		return "", err
	}
	return key.raw, nil
}
