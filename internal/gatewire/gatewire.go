// Package gatewire is the wiring between package keystore and package
// gate, outside the SDK's API: the access-control configuration keystore
// keeps in its state document (Config), the view of the store a gate reads
// it through (State), and the calls keystore makes of its gate before and
// after each operation (Enforcer), which package gate implements and
// registers (Register), so that Open builds a *gate.Gate.
package gatewire

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/policy"
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

// AuditAnchor is the state's record of the audit log's last entry known
// to be on stable storage (audit.Anchor). A log that no longer holds it
// was truncated, deleted or replaced by an older copy, and the gate
// refuses to record into it. Epoch counts ResetAuditAnchor calls, so that
// a process still holding the log from before a reset cannot move the
// anchor of the new one. Stores from before anchors have none (nil).
//
// Detached says that the audit destination keeps the anchor's later
// advances itself (the file log's audit.anchor): this one is where they
// started, and a destination that has lost them is damaged.
type AuditAnchor struct {
	audit.Anchor
	Epoch    uint64 `json:"epoch,omitempty"`
	Detached bool   `json:"detached,omitempty"`
}

// NewConfig returns the access-control configuration of a new store: its
// owner (owner, else the OS user), whether $KEYSTACK_PRINCIPAL is trusted,
// and a fresh audit key.
func NewConfig(owner string, trustPrincipalEnv bool) (Config, error) {
	if owner == "" {
		owner = OSPrincipal()
	}
	key, err := NewAuditKey()
	if err != nil {
		return Config{}, err
	}
	return Config{Owner: owner, TrustPrincipalEnv: trustPrincipalEnv, AuditKey: key, AuditAnchor: &AuditAnchor{}}, nil
}

// NewAuditKey returns a fresh audit HMAC key.
func NewAuditKey() ([]byte, error) {
	key := make([]byte, audit.MinMACKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("keystore: random: %w", err)
	}
	return key, nil
}

// OSPrincipal returns the current OS user as "user:<name>".
func OSPrincipal() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "user:" + u.Username
	}
	if n := os.Getenv("USER"); n != "" {
		return "user:" + n
	}
	return fmt.Sprintf("user:uid-%d", os.Getuid())
}

// IsDenial reports whether err is a policy denial that was recorded: an
// audit failure is not, and must refuse the whole operation.
func IsDenial(err error) bool {
	return errors.Is(err, policy.ErrAccessDenied) && !errors.Is(err, policy.ErrAuditFailed)
}

// Key describes the one key (version) a guarded keyring stands for.
type Key struct {
	// Name is the store key's name, or "BACKEND:REF" for a key outside the
	// store; requests name the resource key/Name.
	Name string
	// Version is the key version; 0 for external keys, whose EDKs name no
	// version.
	Version int
	// Rewrap makes decryption authorize keystack:ReWrap instead of
	// keystack:Decrypt (a header-only rewrap).
	Rewrap bool
	// Match reports whether the wrapped keyring would try an EDK; nil
	// means any EDK.
	Match func(envelope.EncryptedDataKey) bool
	// Provider and Label name the key in a denial's envelope.KeyAttempt:
	// its ESDK provider ID or backend, and NAME/vN (never a reference that
	// may carry secrets).
	Provider, Label string
}

// Options configure Open.
type Options struct {
	// Principal is who the store acts as ("user:alice"); empty means the
	// current OS user.
	Principal string
	// Authorizer, when set, decides every request instead of the store's
	// policy, and keeps its own records: the gate then only scopes
	// requests to their Caller, and policy administration and the audit
	// lifecycle fail with ErrNotSupported.
	Authorizer policy.Authorizer
	// AuditSync commits every record durably before the operation
	// proceeds (audit.Sync); by default records are fsynced in batches.
	AuditSync bool
	// Now is the clock; time.Now by default.
	Now func() time.Time
}

// Enforcer is what package keystore asks of its gate: every decision
// before the operation it decides, the guarded keyrings, the records of
// operations no policy decides, and closing the audit log.
type Enforcer interface {
	// Authorize decides req, scoped to the Caller in ctx (gate.WithCaller),
	// after putting a replaced policy document in force, and records the
	// decision.
	Authorize(ctx context.Context, req policy.Request) error
	// AuthorizeKey decides whether the store's principal (or the Caller
	// in ctx) may do action on key name, and records the decision.
	AuthorizeKey(ctx context.Context, action, name string, version int, ec map[string]string) error
	// AuthorizeKeyActions is AuthorizeKey for several actions one
	// operation needs together, decided in order (each only if those
	// before are allowed) with one audit write when the decision point
	// can.
	AuthorizeKeyActions(ctx context.Context, actions []string, name string, version int, ec map[string]string) error
	// Keyring returns inner behind the gate: every use of key k is
	// authorized for the message's encryption context before inner acts.
	Keyring(inner envelope.Keyring, k Key) envelope.Keyring
	// KeyOf returns the key kr guards, if kr is a keyring of Keyring.
	KeyOf(kr envelope.Keyring) (Key, bool)
	// RecordOperation appends a record of an operation no policy decides
	// (a passphrase change, a seal change), failing closed.
	RecordOperation(ctx context.Context, r audit.Record) error
	// RecordFailedUnlock records that the store's principal gave a wrong
	// passphrase, failing closed like every record.
	RecordFailedUnlock(ctx context.Context) error
	// Principal returns who the store acts as.
	Principal() string
	// Close writes the audit log's closing checkpoint and advances the
	// anchor in the store's state to it; later decisions fail closed. It
	// is idempotent.
	Close() error
}

// opener is the Open package gate registered.
var opener any

// Register is called once, by package gate's init, with its Open: G is
// *gate.Gate and D gate.AuditDestination.
func Register[D, G any](open func(ctx context.Context, st State, dest D, opts Options) (G, Enforcer, error)) {
	opener = open
}

// Open builds the gate of a store over st, recording into dest: without
// Options.Authorizer it builds the policy engine over the store's policy
// document (or the owner's default policy) with the principals' groups and
// tags from Config, and opens the audit log at the anchor Config records,
// so that no store works without a decision point. A log that fails
// verification leaves the gate open with every decision refused
// (gate.ErrAuditDamaged).
func Open[D, G any](ctx context.Context, st State, dest D, opts Options) (G, Enforcer, error) {
	return opener.(func(context.Context, State, D, Options) (G, Enforcer, error))(ctx, st, dest, opts)
}
