package hsm

import (
	"context"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/pkcs11token"
)

// Options configures how a Backend opens tokens.
type Options struct {
	// ModulePath is the PKCS#11 library used when a URI has no module-path.
	ModulePath string
	// Namespace is the provider ID written into encrypted data keys
	// (ESDK raw keyring namespace). Default keyring.ProviderPKCS11.
	Namespace string
	// PoolSize bounds a token's open sessions (default 8, at most 64). It
	// takes effect when the process first opens the token; later opens of
	// the same token share the first one's pool.
	PoolSize int
	// Prompt asks for the PIN of the named token (say, on a terminal
	// without echo) when neither the URI's pin-source nor
	// KEYSTACK_PKCS11_PIN supplies it. Without it, that is ErrNoPIN.
	Prompt func(ctx context.Context, token string) (string, error)
}

// Backend builds keyrings from PKCS#11 URIs, for keystore.Open's Backends
// map (key "pkcs11"). Tokens it opens stay open, shared across keys, until
// Close. It is safe for concurrent use.
type Backend struct {
	b *pkcs11token.Backend
}

// NewBackend returns a Backend that opens tokens with opts. It opens
// nothing until a keyring is asked for.
func NewBackend(opts Options) *Backend {
	return &Backend{b: pkcs11token.NewBackend(pkcs11token.Options{ModulePath: opts.ModulePath,
		Namespace: opts.Namespace, PoolSize: opts.PoolSize, Prompt: opts.Prompt})}
}

// Keyring returns the keyring for the key a PKCS#11 URI names, e.g.
//
//	pkcs11:token=prod;object=payments%2Fv2;type=secret-key?module-path=/usr/lib/softhsm/libsofthsm2.so
//
// object= is required and becomes the key name in encrypted data keys;
// type= selects an AES key (secret-key) or an RSA key pair (private or
// public); without it the token decides. A key the token does not hold is
// ErrKeyNotFound (which matches keyring.ErrKeyNotFound).
func (b *Backend) Keyring(ctx context.Context, ref string) (envelope.Keyring, error) {
	return b.b.Keyring(ctx, ref)
}

// RawKeyring returns the AES key a PKCS#11 URI names as a keyring that
// also seals data whole under the token key (the key server's DataSealer, for the
// XKS proxy): SealRaw(ctx, plaintext, aad) returns a random 12-byte IV and
// the CKM_AES_GCM ciphertext with its tag; OpenRaw(ctx, iv, ct, aad)
// reverses it, failing with keyring.ErrUnwrapFailed for anything that
// does not authenticate.
func (b *Backend) RawKeyring(ctx context.Context, ref string) (envelope.Keyring, error) {
	return b.b.RawKeyring(ctx, ref)
}

// GenerateVersion creates version of the key ref names: a new key of the
// same kind that never leaves the token (an RSA key pair of the same size
// when ref names an RSA key, else an AES-256 key), labeled "BASE/vN" where
// BASE is ref's object label without a "/vN" suffix. It returns ref with
// that object label and type=secret-key or type=private (and no id=),
// keeping the token selection, module-path and pin-source. It fails with
// ErrKeyExists when the label is taken, for example by the object of an
// earlier attempt whose store write failed. The Backend is thereby a
// keystore.VersionGenerator.
func (b *Backend) GenerateVersion(ctx context.Context, ref string, version int) (string, error) {
	return b.b.GenerateVersion(ctx, ref, version)
}

// DestroyVersion destroys (C_DestroyObject) every key object ref selects
// by object label, id and type: an AES key, or both halves of an RSA key
// pair. It succeeds when none is left, so a retry after a crash is
// harmless. The Backend is thereby a keystore.VersionDestroyer.
func (b *Backend) DestroyVersion(ctx context.Context, ref string) error {
	return b.b.DestroyVersion(ctx, ref)
}

// Close closes every token the Backend opened; later calls fail with
// ErrClosed.
func (b *Backend) Close() error { return b.b.Close() }
