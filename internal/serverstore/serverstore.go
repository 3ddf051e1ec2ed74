// Package serverstore is what the key server (package server) and the
// XKS proxy (package xks) do with a keystore.Store beyond the SDK's API:
// a key's KMS-level state (enabled, disabled, pending deletion) and tags,
// aliases, sealing data whole under one key version, the XKS health
// probe, and authenticating access keys. Package keystore implements Ops
// and registers it; Of reaches it from a *keystore.Store.
//
// Every operation but the three documented as making no decision
// (ServerKey, ResolveAlias, LookupCredential, which precede a decision)
// and ProbeKey is decided by the store's gate and audited, as the Store's
// own methods are.
package serverstore

import (
	"context"
	"errors"
	"time"

	"github.com/keystack/keystack/envelope"
)

// Ops is the key server's part of a keystore.Store.
type Ops interface {
	// ReadOnce returns ctx for one request: the first state read made
	// with it (by any of the Store's methods) asks the Storage whether
	// the state changed, later ones reuse what this Store last read or
	// wrote. A change another process makes is seen by the next request;
	// writes always compare against the Storage.
	ReadOnce(ctx context.Context) context.Context

	// ServerKey returns key name's server state without a policy
	// decision: the key server reads it to complete each request (the tags
	// are the keystack:ResourceTag condition keys) before deciding it.
	ServerKey(ctx context.Context, name string) (KeyState, error)
	// SetKeyEnabled enables or disables key name (keystack:EnableKey /
	// keystack:DisableKey). A key pending deletion cannot be enabled
	// (ErrKeyState).
	SetKeyEnabled(ctx context.Context, name string, enabled bool) error
	// ScheduleKeyDeletion marks key name pending deletion after days (7
	// to 30) days (keystack:ScheduleKeyDeletion) and returns the deletion
	// date. The key serves nothing while pending; DeleteDueKeys (which the
	// key server runs every minute) erases it once the date has passed.
	ScheduleKeyDeletion(ctx context.Context, name string, days int) (time.Time, error)
	// CancelKeyDeletion cancels a scheduled deletion; the key is then
	// disabled, as in AWS KMS (keystack:ScheduleKeyDeletion).
	CancelKeyDeletion(ctx context.Context, name string) error
	// DeleteDueKeys erases every key whose deletion date has passed: its
	// record and all its versions' material, its aliases and its server
	// state. Each deletion is decided as keystack:ScheduleKeyDeletion on
	// the key for ctx's principal; a denied key stays and the denial is
	// returned after the others are deleted.
	DeleteDueKeys(ctx context.Context) ([]string, error)
	// TagKey adds or replaces tags of key name (keystack:TagResource); a
	// key has at most 50.
	TagKey(ctx context.Context, name string, tags map[string]string) error
	// UntagKey removes tags of key name by key (keystack:UntagResource).
	UntagKey(ctx context.Context, name string, keys []string) error
	// KeyTags returns the tags of key name (keystack:DescribeKey).
	KeyTags(ctx context.Context, name string) (map[string]string, error)

	// ResolveAlias returns the key name alias points to, without a policy
	// decision (the operation then made on the key is decided).
	ResolveAlias(ctx context.Context, alias string) (string, error)
	// CreateAlias points alias ("alias/NAME") at key name
	// (keystack:CreateAlias on the key).
	CreateAlias(ctx context.Context, alias, name string) error
	// DeleteAlias removes alias (keystack:DeleteAlias on the key it names).
	DeleteAlias(ctx context.Context, alias string) error
	// ListAliases returns every alias, or those of key name when name is
	// not empty, sorted (keystack:ListKeys on "*", as AWS KMS's
	// ListAliases needs kms:ListAliases on "*").
	ListAliases(ctx context.Context, name string) ([]Alias, error)

	// SealData encrypts plaintext under the primary version of AES key
	// name (local, or a PKCS#11 token key through its backend) with
	// aadFor(version) as additional data, so that a format naming the
	// version inside the authenticated data (the XKS proxy's ciphertext
	// metadata) cannot race a rotation. action (keystack:Encrypt,
	// keystack:GenerateDataKey or keystack:ReWrap) is decided on that
	// version with ec as the request's encryption context. The key must be
	// enabled in the server state (ErrKeyState) and its primary version
	// enabled (keystore.ErrKeyDisabled).
	SealData(ctx context.Context, action, name string, plaintext []byte, aadFor func(version int) []byte, ec map[string]string) (*SealedData, error)
	// OpenData decrypts what SealData sealed under key name, deciding
	// action (keystack:Decrypt or keystack:ReWrap) on d's version with ec.
	// The version must be able to decrypt (keystore.ErrKeyDisabled). A
	// ciphertext that does not authenticate with aad fails with
	// keyring.ErrUnwrapFailed.
	OpenData(ctx context.Context, action, name string, d SealedData, aad []byte, ec map[string]string) ([]byte, error)
	// DataKeyInfo decides keystack:DescribeKey on key name and reports
	// what SealData and OpenData can do with it. A PKCS#11 key's length
	// and usage are asked of the token.
	DataKeyInfo(ctx context.Context, name string) (*DataKeyInfo, error)
	// ProbeKey seals 32 random bytes under key name's primary version and
	// opens them again, without a policy decision or an audit entry: the
	// XKS proxy's health check, which the XKS specification excludes from
	// authorization. It returns nil only when the round trip gave the
	// bytes back.
	ProbeKey(ctx context.Context, name string) error
	// GenerateRandom returns n (1 to 1024) random bytes
	// (keystack:GenerateRandom on "random").
	GenerateRandom(ctx context.Context, n int) ([]byte, error)

	// LookupCredential returns the access key akid with its secret, for
	// the key server to verify a signature. It makes no policy decision:
	// it is the authentication step that precedes every decision. It
	// needs the store unsealed and fails with
	// keystore.ErrCredentialNotFound for an unknown or revoked key, from
	// the next request after a revocation on.
	LookupCredential(ctx context.Context, akid string) (*Credential, error)
}

// Credential is an access key with its secret, as LookupCredential
// returns it.
type Credential struct {
	AccessKeyID string
	Principal   string
	Secret      string
}

// KeyState is a key's state as the key server reports it: KMS's Enabled,
// Disabled or PendingDeletion (with DeletionDate), and its tags.
type KeyState struct {
	State        string
	DeletionDate time.Time
	Tags         map[string]string
}

// KMS key states (KeyState.State).
const (
	Enabled         = "Enabled"
	Disabled        = "Disabled"
	PendingDeletion = "PendingDeletion"
)

// Alias is one alias and the key name it points to.
type Alias struct{ Alias, Key string }

// SealedData is data sealed by SealData: AES-256-GCM under one version of
// a key, with a 96-bit nonce; Ciphertext ends with the 16-byte tag.
type SealedData struct {
	Version    int
	Nonce      []byte
	Ciphertext []byte
}

// DataKeyInfo describes a key for the XKS proxy's GetKeyMetadata.
type DataKeyInfo struct {
	Bits       int  // AES key length; 0 when the key cannot seal data (RSA)
	Enabled    bool // enabled in the server state and its primary version enabled
	CanEncrypt bool // its primary version encrypts
	CanDecrypt bool // some version decrypts
}

// DataSealer is a keystore.Backend whose AES keys also seal data whole,
// for SealData and OpenData on its keys (the PKCS#11 backend): RawKeyring
// returns the key ref names, with SealRaw, OpenRaw and KeyBits methods.
type DataSealer interface {
	RawKeyring(ctx context.Context, ref string) (envelope.Keyring, error)
}

// Errors of the key server's state.
var (
	// ErrAliasExists is returned when creating an alias already in use.
	ErrAliasExists = errors.New("keystore: alias already exists")
	// ErrAliasNotFound is returned for an alias the store does not hold.
	ErrAliasNotFound = errors.New("keystore: alias not found")
	// ErrInvalidAlias is returned for an alias that is not "alias/" and
	// 1-250 of A-Z a-z 0-9 / _ -, or that starts with the reserved
	// "alias/aws/".
	ErrInvalidAlias = errors.New("keystore: invalid alias name")
	// ErrKeyState is returned when a key's server state forbids the
	// operation: it is disabled, or pending deletion.
	ErrKeyState = errors.New("keystore: key state forbids the operation")
)

var of func(store any) Ops

// Register sets the function Of calls. Package keystore calls it once,
// from init.
func Register(f func(store any) Ops) { of = f }

// Of returns the server operations of store, a *keystore.Store.
func Of(store any) Ops { return of(store) }
