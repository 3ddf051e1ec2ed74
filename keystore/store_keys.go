package keystore

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/policy"
)

// Backend names a key's home. Local keys live sealed in the store; the
// others are references resolved through OpenOptions.Backends.
const (
	BackendLocal  = "local"
	BackendAWSKMS = "aws-kms"
	BackendPKCS11 = "pkcs11"
)

// VersionState is a key version's lifecycle state.
type VersionState string

const (
	// StateEnabled versions encrypt (when primary) and decrypt.
	StateEnabled VersionState = "enabled"
	// StateDecryptOnly versions decrypt old messages but never encrypt;
	// rotation moves the previous primary here.
	StateDecryptOnly VersionState = "decrypt-only"
	// StateDisabled versions do neither, reversibly.
	StateDisabled VersionState = "disabled"
	// StatePendingDestruction versions do neither and are erased by
	// DestroyDueVersions once their DestroyAt has passed, unless
	// CancelVersionDestruction disables them first.
	StatePendingDestruction VersionState = "pending-destruction"
	// StateDestroyed versions have no material left.
	StateDestroyed VersionState = "destroyed"
)

func (v VersionState) valid() bool {
	return v == StateEnabled || v == StateDecryptOnly || v == StateDisabled ||
		v == StatePendingDestruction || v == StateDestroyed
}

func (v VersionState) canDecrypt() bool { return v == StateEnabled || v == StateDecryptOnly }

// Event is one entry of a key version's history.
type Event struct {
	Time   time.Time `json:"time"`
	Action string    `json:"action"`
	Reason string    `json:"reason,omitempty"`
}

// VersionInfo describes one key version; it never holds key material.
type VersionInfo struct {
	Version int          `json:"version"`
	State   VersionState `json:"state"`
	Created time.Time    `json:"created"`
	// Ref is the ARN or PKCS#11 URI for external backends; empty for local keys.
	Ref string `json:"ref,omitempty"`
	// Alias is the reference the version was registered by when the
	// backend resolved it to Ref (a KMS alias ARN; Ref is the key ARN it
	// named then, which is what messages record).
	Alias   string  `json:"alias,omitempty"`
	History []Event `json:"history,omitempty"`
	// DestroyAt is when a pending-destruction version becomes due for
	// DestroyDueVersions; zero in every other state.
	DestroyAt time.Time `json:"destroy_at,omitzero"`
}

// KeyInfo describes a key and its versions; it never holds key material.
type KeyInfo struct {
	Name        string        `json:"name"`
	Backend     string        `json:"backend"`
	Description string        `json:"description,omitempty"`
	Created     time.Time     `json:"created"`
	Primary     int           `json:"primary"`
	Versions    []VersionInfo `json:"versions"`
	// Namespace and KeyName are the ESDK provider ID and key name of an
	// imported key's EDKs, when given at import.
	Namespace string `json:"namespace,omitempty"`
	KeyName   string `json:"key_name,omitempty"`
	// Kind is "aes-128", "aes-192", "aes-256", "rsa-BITS", or the backend
	// name for external keys.
	Kind string `json:"kind"`
	// Rotation is the key's rotation schedule, nil when it has none.
	Rotation *RotationSettings `json:"rotation,omitempty"`
	// LastRotated is when RotateKey or RotateKeyTo last made a new primary;
	// zero when never.
	LastRotated time.Time `json:"last_rotated,omitzero"`
	// MinDecryptVersion, when set, is the oldest version that may decrypt.
	MinDecryptVersion int `json:"min_decrypt_version,omitempty"`
}

// keyRecord is a key as stored in keystore.json.
type keyRecord struct {
	Backend     string             `json:"backend"`
	Description string             `json:"description,omitempty"`
	Created     time.Time          `json:"created"`
	Primary     int                `json:"primary"`
	Kind        string             `json:"kind"`
	Namespace   string             `json:"namespace,omitempty"`
	KeyName     string             `json:"key_name,omitempty"`
	Padding     keyring.RSAPadding `json:"rsa_padding,omitempty"`
	Versions    []*versionRecord   `json:"versions"`
	Rotation    *RotationSettings  `json:"rotation,omitempty"`
	LastRotated time.Time          `json:"last_rotated,omitzero"`
	MinDecrypt  int                `json:"min_decrypt_version,omitempty"`
}

// versionRecord is a key version as stored: its public description plus
// Material (sealed, or clear in an insecure store: the raw AES key or the
// PKCS#8 DER RSA private key) and Public (the PKIX DER RSA public key).
type versionRecord struct {
	VersionInfo
	Material []byte `json:"material,omitempty"`
	Public   []byte `json:"public,omitempty"`
}

func (k *keyRecord) info(name string) *KeyInfo {
	ki := &KeyInfo{Name: name, Backend: k.Backend, Description: k.Description, Created: k.Created,
		Primary: k.Primary, Namespace: k.Namespace, KeyName: k.KeyName, Kind: k.Kind,
		Rotation: k.Rotation.clone(), LastRotated: k.LastRotated, MinDecryptVersion: k.MinDecrypt}
	for _, v := range k.Versions {
		vi := v.VersionInfo
		vi.History = slices.Clone(vi.History)
		ki.Versions = append(ki.Versions, vi)
	}
	return ki
}

func (k *keyRecord) version(v int) *versionRecord {
	for _, vr := range k.Versions {
		if vr.Version == v {
			return vr
		}
	}
	return nil
}

func (k *keyRecord) isRSA() bool { return strings.HasPrefix(k.Kind, "rsa-") }

// check validates a key read from keystore.json.
func (k *keyRecord) check(name string) error {
	bad := func(why string) error { return fmt.Errorf("%w: key %q: %s", ErrCorruptStore, name, why) }
	if err := checkName(name); err != nil {
		return bad("invalid name")
	}
	if k == nil || k.Backend == "" || len(k.Versions) == 0 || k.version(k.Primary) == nil {
		return bad("missing backend, versions or primary")
	}
	if (k.Namespace == "") != (k.KeyName == "") {
		return bad("namespace without key name")
	}
	if k.MinDecrypt < 0 || k.MinDecrypt > k.Primary {
		return bad("minimum decryption version above the primary")
	}
	if err := k.Rotation.check(); err != nil {
		return bad("invalid rotation settings")
	}
	if k.isRSA() {
		if !k.Padding.Valid() {
			return bad("unknown RSA padding")
		}
	}
	for i, v := range k.Versions {
		if v == nil || !v.State.valid() || v.Version < 1 || (i > 0 && v.Version <= k.Versions[i-1].Version) {
			return bad("invalid version list")
		}
		if k.Backend == BackendLocal && v.State != StateDestroyed && len(v.Material) == 0 && len(v.Public) == 0 {
			return bad("version " + strconv.Itoa(v.Version) + " has no material")
		}
		if (v.State == StatePendingDestruction) != !v.DestroyAt.IsZero() {
			return bad("version " + strconv.Itoa(v.Version) + " has a destruction time only valid while pending")
		}
	}
	return nil
}

// ListKeys returns every key, sorted by name.
func (s *Store) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	if err := s.authorize(ctx, policy.ActionListKeys, "*", 0, nil); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := s.view(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]KeyInfo, 0, len(f.Keys))
	for _, name := range sortedNames(f) {
		out = append(out, *f.Keys[name].info(name))
	}
	return out, nil
}

// DescribeKey returns one key, or ErrKeyNotFound.
func (s *Store) DescribeKey(ctx context.Context, name string) (*KeyInfo, error) {
	if err := s.authorize(ctx, policy.ActionDescribeKey, name, 0, nil); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	_, k, err := s.viewKey(ctx, name)
	if err != nil {
		return nil, err
	}
	return k.info(name), nil
}

// viewKey returns the shared read-only state (see view) and key name in it.
func (s *Store) viewKey(ctx context.Context, name string) (*storeFile, *keyRecord, error) {
	f, err := s.view(ctx)
	if err != nil {
		return nil, nil, err
	}
	k, err := lookup(f, name)
	if err != nil {
		return nil, nil, err
	}
	return f, k, nil
}

func lookup(f *storeFile, name string) (*keyRecord, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	k, ok := f.Keys[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrKeyNotFound, name)
	}
	return k, nil
}

func sortedNames(f *storeFile) []string {
	names := make([]string, 0, len(f.Keys))
	for n := range f.Keys {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func randomKey(n int) ([]byte, error) {
	k := make([]byte, n)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	return k, nil
}

// sealMaterial seals material for version v of key name, or copies it in
// clear for an insecure store (kek nil).
func sealMaterial(f *storeFile, kek []byte, name string, v int, material []byte) ([]byte, error) {
	if f.Insecure {
		return slices.Clone(material), nil
	}
	if err := checkVerifier(kek, f.Verifier); err != nil {
		return nil, errResealed
	}
	return seal(kek, material, materialAAD(name, v))
}

func aesKind(n int) string { return "aes-" + strconv.Itoa(8*n) }

func rsaKind(pub *rsa.PublicKey) string { return "rsa-" + strconv.Itoa(pub.N.BitLen()) }

func marshalRSAPublic(pub *rsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", keyring.ErrInvalidKey, err)
	}
	return der, nil
}
