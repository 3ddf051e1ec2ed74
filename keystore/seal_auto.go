package keystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

// Auto-unseal, as Vault's seals do it: the store's key-encryption key is
// a random 256-bit key, wrapped by a master key held outside the store (an
// AES or RSA key in a PKCS#11 token, or an AWS KMS key), so that the store
// opens without a passphrase wherever that master key can be used. The
// wrapped key is an ESDK encrypted data key written by the backend's own
// keyring under the encryption context sealContext.

// ErrAutoUnseal is returned when the master key of an auto-unsealed store
// does not give its key-encryption key. When the backend could not be
// reached, refused access or rejected the PIN, the error also matches that
// backend's own error (errors.Is), which tells the classes apart.
var ErrAutoUnseal = errors.New("keystore: auto-unseal failed")

// SealPassphrase is the seal kind of a store sealed by its passphrase;
// an auto-unsealed store's kind is its master key's backend
// (BackendPKCS11, BackendAWSKMS).
const SealPassphrase = "passphrase"

const (
	// actionSetSeal is the audit action of a seal change.
	actionSetSeal = "keystack:SetSeal"
	// maxSealField bounds the wrapped key's fields read from keystore.json.
	maxSealField = 4096
)

// sealSuite is the suite whose 32-byte data key is the key-encryption key.
const sealSuite = envelope.SuiteCommitted

// sealRecord is keystore.json's "seal": the key-encryption key wrapped by
// an external master key. A store has a seal record or a passphrase KDF,
// never both.
type sealRecord struct {
	Backend      string `json:"backend"` // "pkcs11" or "aws-kms"
	Ref          string `json:"ref"`     // the master key: a PKCS#11 URI without PIN, or a KMS key ARN
	ProviderID   string `json:"provider_id"`
	ProviderInfo []byte `json:"provider_info"`
	Wrapped      []byte `json:"wrapped"`
}

func (r *sealRecord) check() error {
	if (r.Backend != BackendPKCS11 && r.Backend != BackendAWSKMS) || r.Ref == "" || len(r.Ref) > maxSealField ||
		len(r.ProviderID) > maxSealField || len(r.ProviderInfo) > maxSealField || len(r.Wrapped) == 0 || len(r.Wrapped) > maxSealField {
		return fmt.Errorf("%w: malformed seal record", ErrCorruptStore)
	}
	return nil
}

// sealContext is the encryption context the master key binds the wrapped
// key to (AWS KMS records it in CloudTrail; PKCS#11 keyrings authenticate it).
func sealContext() map[string]string {
	return map[string]string{"keystack-purpose": "keystore key-encryption key v1"}
}

// SealOptions says how SetSeal seals the store.
type SealOptions struct {
	// Kind is SealPassphrase, BackendPKCS11 or BackendAWSKMS.
	Kind string
	// Ref is the master key of an auto-unseal: a PKCS#11 URI naming an AES
	// key or RSA key pair (object=LABEL; no pin-value, the PIN comes from
	// pin-source or the backend's environment) or an AWS KMS key ARN (an
	// alias ARN is resolved to its key ARN). Empty for SealPassphrase.
	Ref string
	// Passphrase is the new passphrase for SealPassphrase; KDF its KDF
	// ("argon2id" by default, or "scrypt").
	Passphrase []byte
	KDF        string
}

// SealInfo describes how a store is sealed.
type SealInfo struct {
	Kind string // "passphrase", "pkcs11", "aws-kms", or "none" for an insecure store
	Ref  string // the master key of an auto-unseal
}

// SealInfo reports how the store is sealed. It needs no passphrase.
func (s *Store) SealInfo() (SealInfo, error) {
	f, err := s.view(context.Background())
	switch {
	case err != nil:
		return SealInfo{}, err
	case f.Insecure:
		return SealInfo{Kind: "none"}, nil
	case f.Seal != nil:
		return SealInfo{Kind: f.Seal.Backend, Ref: f.Seal.Ref}, nil
	}
	return SealInfo{Kind: SealPassphrase}, nil
}

// UsesBackend reports whether the store lists a key of backend or is
// auto-unsealed by one. It needs no passphrase and is neither authorized
// nor audited: it tells the CLI which build can run a command, and reveals
// no more than keystore.json's metadata does.
func (s *Store) UsesBackend(backend string) (bool, error) {
	f, err := s.view(context.Background())
	if err != nil {
		return false, err
	}
	if f.Seal != nil && f.Seal.Backend == backend {
		return true, nil
	}
	for _, k := range f.Keys {
		if k.Backend == backend {
			return true, nil
		}
	}
	return false, nil
}

// SetSeal changes how the store is sealed: to a master key in a PKCS#11
// token or AWS KMS (auto-unseal: Open needs no passphrase), or back to a
// passphrase. It needs the current seal (the passphrase, or the current
// master key). Every change makes a new key-encryption key and seals every
// key version and credential secret again under it, so the old passphrase
// or master key opens nothing written after the change.
//
// Crash safety: as ChangePassphrase, the change is one atomic replace of
// keystore.json under the write lock, recorded in the audit log before
// the replace; a crash leaves the old seal or the new one, never a mix.
func (s *Store) SetSeal(ctx context.Context, opts SealOptions) error {
	return s.rekey(ctx, func(f *storeFile) ([]byte, error) { return s.resealTo(ctx, f, opts) })
}

// resealTo rewrites f in memory under the seal opts asks for and records
// the change; it returns the new key-encryption key.
func (s *Store) resealTo(ctx context.Context, f *storeFile, opts SealOptions) ([]byte, error) {
	if f.Insecure {
		return nil, fmt.Errorf("%w: the store is unsealed (created with no passphrase)", ErrInvalidOptions)
	}
	oldKEK, err := s.unlockKEK(f)
	if err != nil {
		return nil, err
	}
	defer clear(oldKEK)
	newKEK, kdf, rec, err := s.newSeal(ctx, opts)
	if err == nil {
		err = resealAll(f, oldKEK, newKEK)
	}
	if err == nil {
		f.KDF, f.Seal = kdf, rec
		err = s.recordSeal(ctx)
	}
	if err != nil {
		clear(newKEK)
		return nil, err
	}
	return newKEK, nil
}

// newSeal makes the key-encryption key of a new seal, with its KDF (a
// passphrase) or its wrapped form (auto-unseal).
func (s *Store) newSeal(ctx context.Context, opts SealOptions) ([]byte, *kdfParams, *sealRecord, error) {
	if opts.Kind == SealPassphrase {
		if opts.Ref != "" || len(opts.Passphrase) == 0 {
			return nil, nil, nil, fmt.Errorf("%w: a passphrase seal needs a passphrase and no key reference", ErrInvalidOptions)
		}
		p, err := newKDFParams(opts.KDF)
		if err != nil {
			return nil, nil, nil, err
		}
		kek, err := p.deriveKEK(opts.Passphrase)
		return kek, &p, nil, err
	}
	if opts.Kind != BackendPKCS11 && opts.Kind != BackendAWSKMS {
		return nil, nil, nil, fmt.Errorf("%w: unknown seal %q (want passphrase, pkcs11 or aws-kms)", ErrInvalidOptions, opts.Kind)
	}
	if len(opts.Passphrase) > 0 || opts.KDF != "" {
		return nil, nil, nil, fmt.Errorf("%w: an auto-unseal takes no passphrase", ErrInvalidOptions)
	}
	if err := s.checkExternal(opts.Kind, opts.Ref); err != nil {
		return nil, nil, nil, err
	}
	ref, _, err := s.resolveRef(ctx, opts.Kind, opts.Ref)
	if err != nil {
		return nil, nil, nil, err
	}
	kek, err := randomKey(kekLen)
	if err != nil {
		return nil, nil, nil, err
	}
	rec, err := s.wrapKEK(ctx, opts.Kind, ref, kek)
	if err != nil {
		clear(kek)
		return nil, nil, nil, err
	}
	return kek, nil, rec, nil
}

// wrapKEK wraps kek under the master key ref of backend, then unwraps it
// again: a seal whose master key cannot open what it wrote (a public key
// only, a key that encrypts but may not decrypt) is refused before the
// store depends on it.
func (s *Store) wrapKEK(ctx context.Context, backend, ref string, kek []byte) (*sealRecord, error) {
	kr, err := s.externalKeyring(ctx, backend, ref)
	if err != nil {
		return nil, err
	}
	m := &envelope.EncryptionMaterials{Suite: sealSuite, EncryptionContext: sealContext(), DataKey: bytes.Clone(kek), PlaintextLength: -1}
	if err := kr.OnEncrypt(ctx, m); err != nil {
		return nil, fmt.Errorf("keystore: seal set: wrapping the key-encryption key with the %s key: %w", backend, err)
	}
	if len(m.EncryptedDataKeys) != 1 {
		return nil, fmt.Errorf("%w: seal set: the %s keyring wrote %d wrapped keys, want 1", keyring.ErrInvalidKey, backend, len(m.EncryptedDataKeys))
	}
	e := m.EncryptedDataKeys[0]
	rec := &sealRecord{Backend: backend, Ref: ref, ProviderID: e.ProviderID, ProviderInfo: e.ProviderInfo, Wrapped: e.Ciphertext}
	if err := rec.check(); err != nil {
		return nil, fmt.Errorf("%w: seal set: the %s keyring's wrapped key does not fit the store", keyring.ErrInvalidKey, backend)
	}
	got, err := s.unwrapKEK(ctx, rec)
	if err != nil {
		return nil, fmt.Errorf("%w: seal set: the %s key cannot unwrap what it wrapped (a public key only?): %v", keyring.ErrInvalidKey, backend, err)
	}
	defer clear(got)
	if !bytes.Equal(got, kek) {
		return nil, fmt.Errorf("%w: seal set: the %s key unwrapped another key than it wrapped", keyring.ErrInvalidKey, backend)
	}
	return rec, nil
}

// unwrapKEK asks the seal's master key for the key-encryption key.
func (s *Store) unwrapKEK(ctx context.Context, r *sealRecord) ([]byte, error) {
	kr, err := s.externalKeyring(ctx, r.Backend, r.Ref)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAutoUnseal, err)
	}
	m := &envelope.DecryptionMaterials{Suite: sealSuite, EncryptionContext: sealContext()}
	edk := envelope.EncryptedDataKey{ProviderID: r.ProviderID, ProviderInfo: r.ProviderInfo, Ciphertext: r.Wrapped}
	if err := kr.OnDecrypt(ctx, m, []envelope.EncryptedDataKey{edk}); err != nil {
		var nd *envelope.NoDecryptKeyError
		if errors.As(err, &nd) && len(nd.Attempts) == 1 && nd.Attempts[0].Err != nil {
			err = nd.Attempts[0].Err // the one key's own failure: a PIN, the module, the network
		}
		return nil, fmt.Errorf("%w: the %s key %s: %w", ErrAutoUnseal, r.Backend, r.Ref, err)
	}
	if len(m.DataKey) != kekLen {
		clear(m.DataKey)
		return nil, fmt.Errorf("%w: the unwrapped key has %d bytes, want %d", ErrAutoUnseal, len(m.DataKey), kekLen)
	}
	return m.DataKey, nil
}

// autoUnlock returns the key-encryption key of an auto-unsealed store,
// checked against its verifier.
func (s *Store) autoUnlock(f *storeFile) ([]byte, error) {
	kek, err := s.unwrapKEK(context.Background(), f.Seal)
	if err != nil {
		return nil, err
	}
	if err := checkVerifier(kek, f.Verifier); err != nil {
		clear(kek)
		return nil, fmt.Errorf("%w: the unwrapped key does not match the store's verifier", ErrAutoUnseal)
	}
	return kek, nil
}

// recordSeal appends a seal change to the audit log, failing closed.
func (s *Store) recordSeal(ctx context.Context) error {
	r := audit.Record{Principal: s.principal, Action: actionSetSeal, Resource: resourceKeystore, Outcome: "ok"}
	if err := s.enf.RecordOperation(ctx, r); err != nil {
		return fmt.Errorf("keystore: seal change not recorded in the audit log, so not made: %w", err)
	}
	return nil
}
