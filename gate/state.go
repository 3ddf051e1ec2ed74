package gate

import (
	"context"
	"errors"
)

// State is the gate's view of the store's persistent state: the
// access-control part of the state document (Config) and the policy
// document. Package keystore implements it over its Storage. Revisions are
// opaque strings compared for equality; "" means the document does not
// exist.
type State interface {
	// Config returns a fresh copy of the access-control configuration and
	// the revision of the state document it was read from.
	Config(ctx context.Context) (*Config, string, error)
	// ConfigRevision returns the state document's current revision without
	// reading it; "" when it cannot be had.
	ConfigRevision(ctx context.Context) string
	// UpdateConfig runs fn on a fresh copy of the configuration under the
	// writers' lock and writes the state back when fn succeeds; fn returns
	// ErrUnchanged to skip the write.
	UpdateConfig(ctx context.Context, fn func(*Config) error) error
	// ReadPolicy returns the policy document and its revision; ErrNoPolicy
	// when the store has none.
	ReadPolicy(ctx context.Context) ([]byte, string, error)
	// PolicyRevision returns the policy document's revision ("" when
	// there is none) without reading it.
	PolicyRevision(ctx context.Context) (string, error)
	// WritePolicy replaces the policy document with data if its revision
	// is still prev, atomically; the caller holds Lock.
	WritePolicy(ctx context.Context, data []byte, prev string) error
	// Lock takes the store's writers' lock.
	Lock(ctx context.Context) (unlock func(), err error)
	// CheckPassphrase proves the caller holds the store's passphrase,
	// asking for it if need be. A store without a passphrase returns
	// sealed false and asks nothing.
	CheckPassphrase(ctx context.Context) (sealed bool, err error)
}

// Errors of a State.
var (
	// ErrUnchanged, returned by an UpdateConfig function, skips the write.
	ErrUnchanged = errors.New("gate: unchanged")
	// ErrNoPolicy is returned by ReadPolicy when the store has no policy
	// document.
	ErrNoPolicy = errors.New("gate: no policy document")
)

// Config is the access-control part of the store's state document
// (keystore.json embeds it, so its fields sit at the top level of the
// file).
//
// AuditKey is the HMAC-SHA256 key of the audit log (every record's chain
// hash and the checkpoints); AuditAnchor pins its last durable record. The
// key is stored in clear (keystore.json is mode 0600) so that operations
// that need no passphrase, such as listing keys or encrypting to an RSA
// public key, are still audited. The local audit log is therefore
// tamper-evident only against someone who cannot read keystore.json; and,
// like the policy, it is a guardrail against anyone who can read the
// store's files and knows the passphrase. Hard enforcement needs the keys
// behind KMS IAM or a key server.
type Config struct {
	Owner             string                     `json:"owner,omitempty"`
	TrustPrincipalEnv bool                       `json:"trust_principal_env,omitempty"`
	Principals        map[string]PrincipalConfig `json:"principals,omitempty"`
	AuditKey          []byte                     `json:"audit_key,omitempty"`
	AuditSync         bool                       `json:"audit_sync,omitempty"`
	AuditAnchor       *AuditAnchor               `json:"audit_anchor,omitempty"`
}

// PrincipalConfig is one entry of the "principals" section: the groups
// (without "group:") and tags a principal has under the policy.
type PrincipalConfig struct {
	Groups []string          `json:"groups,omitempty"`
	Tags   map[string]string `json:"tags,omitempty"`
}
