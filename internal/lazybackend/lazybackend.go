// Package lazybackend is the CLI's wrapper around a keystore.Backend that
// opens the backend (a PKCS#11 module and its PIN, AWS credentials) only
// when a message or a lifecycle operation first needs it.
package lazybackend

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keystore"
)

// Backend is a keystore.Backend that constructs the backend Open returns, and
// each key's keyring, only when first used: decrypting over a store that
// lists HSM or KMS keys then needs no PIN and no credentials for messages
// those keys did not wrap. It implements only Keyring and Close itself;
// the store reaches the backend's other methods (rotation, destruction)
// through UnwrapBackend, so wrapping hides no capability.
type Backend struct {
	Name       string                 // backend name, for errors (a reference may hold secrets)
	ProviderID string                 // ESDK provider ID of the EDKs its keyrings write
	Check      func(ref string) error // rejects a malformed reference before any backend setup; nil accepts all
	Open       func() keystore.Backend

	once    sync.Once
	backend keystore.Backend
}

// The store finds a backend's optional capabilities through UnwrapBackend.
var _ interface{ UnwrapBackend() keystore.Backend } = (*Backend)(nil)

// Keyring checks ref's syntax now and resolves it when first used.
func (b *Backend) Keyring(_ context.Context, ref string) (envelope.Keyring, error) {
	if b.Check != nil {
		if err := b.Check(ref); err != nil {
			return nil, err
		}
	}
	return &lazyRefKeyring{b: b, ref: ref}, nil
}

// Close closes the backend if it was opened and is an io.Closer (the
// PKCS#11 backend logs out of its tokens and finalizes the module). No
// backend opens after Close.
func (b *Backend) Close() error {
	b.once.Do(func() {})
	if cl, ok := b.backend.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// UnwrapBackend opens the backend, so that the store finds its optional
// capabilities (new key versions on the token, KMS on-demand and automatic
// rotation, destroying token objects): a lifecycle operation that needs one
// is the backend's first use. Nil after Close.
func (b *Backend) UnwrapBackend() keystore.Backend {
	b.once.Do(func() { b.backend = b.Open() })
	return b.backend
}

// lazyRefKeyring resolves ref through its backend when first needed; a
// failed resolution is retried at the next call.
type lazyRefKeyring struct {
	b   *Backend
	ref string

	mu sync.Mutex
	kr envelope.Keyring
}

var errNoBackendEDK = errors.New("no encrypted data key of this backend")

func (k *lazyRefKeyring) keyring(ctx context.Context) (envelope.Keyring, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.kr == nil {
		be := k.b.UnwrapBackend()
		if be == nil {
			return nil, errors.New("keystore: " + k.b.Name + " backend used after Close")
		}
		kr, err := be.Keyring(ctx, k.ref)
		if err != nil {
			return nil, err
		}
		k.kr = kr
	}
	return k.kr, nil
}

func (k *lazyRefKeyring) OnEncrypt(ctx context.Context, m *envelope.EncryptionMaterials) error {
	kr, err := k.keyring(ctx)
	if err != nil {
		return err
	}
	return kr.OnEncrypt(ctx, m)
}

// OnDecrypt opens the backend only when an EDK has its provider ID.
func (k *lazyRefKeyring) OnDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	if !slices.ContainsFunc(edks, func(e envelope.EncryptedDataKey) bool { return e.ProviderID == k.b.ProviderID }) {
		return &envelope.NoDecryptKeyError{Attempts: []envelope.KeyAttempt{
			{ProviderID: k.b.ProviderID, KeyName: k.b.Name, Err: errNoBackendEDK}}}
	}
	kr, err := k.keyring(ctx)
	if err != nil {
		return &envelope.NoDecryptKeyError{Attempts: []envelope.KeyAttempt{
			{ProviderID: k.b.ProviderID, KeyName: k.b.Name, Err: err}}}
	}
	return kr.OnDecrypt(ctx, m, edks)
}
