package keystore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sync"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/policy"
)

// Files of the access-control layer, next to keystore.json.
const (
	policyFile = "policy.json"
	auditFile  = "audit.log"
)

// PrincipalEnv names the environment variable PrincipalFromEnv reads.
const PrincipalEnv = "KEYSTACK_PRINCIPAL"

// authzConfig is the access-control part of keystore.json, embedded in
// storeFile so its fields sit at the top level of the file.
//
// AuditKey is the HMAC-SHA256 key of the audit log (every record's chain
// hash and the checkpoints); AuditAnchor pins its last durable record
// (store_audit.go). The key is stored in clear (the file is mode 0600) so that operations that need no
// passphrase, such as listing keys or encrypting to an RSA public key, are
// still audited. The local audit log is therefore tamper-evident only
// against someone who cannot read keystore.json; and, like the policy, it is
// a guardrail against anyone who can read the store's files and knows the
// passphrase. Hard enforcement needs the keys behind KMS IAM or a key
// server.
type authzConfig struct {
	Owner             string                     `json:"owner,omitempty"`
	TrustPrincipalEnv bool                       `json:"trust_principal_env,omitempty"`
	Principals        map[string]principalConfig `json:"principals,omitempty"`
	AuditKey          []byte                     `json:"audit_key,omitempty"`
	AuditSync         bool                       `json:"audit_sync,omitempty"`
	AuditAnchor       *auditAnchor               `json:"audit_anchor,omitempty"`
}

// principalConfig is one entry of keystore.json's "principals" section:
// the groups (without "group:") and tags a principal has under the policy.
type principalConfig struct {
	Groups []string          `json:"groups,omitempty"`
	Tags   map[string]string `json:"tags,omitempty"`
}

// authzState is the default decision point a Store builds for itself.
type authzState struct {
	engine  *policy.Engine
	path    string
	options audit.Options

	mu      sync.RWMutex
	log     *audit.Log // nil once closed or when damaged
	damaged error      // why log is nil: decisions fail with it
	epoch   uint64     // of the anchor the log was opened at (auditAnchor.Epoch)
	anchors backgroundAnchor

	follow    policyFollower
	directory liveDirectory
}

// osPrincipal returns the current OS user as "user:<name>".
func osPrincipal() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "user:" + u.Username
	}
	if n := os.Getenv("USER"); n != "" {
		return "user:" + n
	}
	return fmt.Sprintf("user:uid-%d", os.Getuid())
}

// initAuthz fills the access-control configuration of a new store: its
// owner (InitOptions.Owner, else the OS user) and a fresh audit key.
func initAuthz(f *storeFile, opts InitOptions) error {
	f.Owner = opts.Owner
	if f.Owner == "" {
		f.Owner = osPrincipal()
	}
	f.TrustPrincipalEnv = opts.TrustPrincipalEnv
	key, err := randomKey(audit.MinMACKeySize)
	if err != nil {
		return err
	}
	f.AuditKey = key
	f.AuditAnchor = &auditAnchor{}
	return nil
}

// PrincipalFromEnv returns $KEYSTACK_PRINCIPAL when the store in dir was
// initialized to trust it (InitOptions.TrustPrincipalEnv, for tests and CI),
// and "" otherwise, in which case Open uses the OS user.
func PrincipalFromEnv(dir string) (string, error) {
	f, err := (&Store{dir: dir, st: NewDirStorage(dir)}).load()
	if err != nil {
		return "", err
	}
	if !f.TrustPrincipalEnv {
		return "", nil
	}
	return os.Getenv(PrincipalEnv), nil
}

// setupAuthz installs the store's decision point. With a caller-supplied
// Authorizer it only fills in the principal; otherwise it builds the default
// Engine over policy.json (or the owner's default policy) recording into
// audit.log, so that no Store works without a decision point.
func (s *Store) setupAuthz(f *storeFile, rev Revision, opts OpenOptions) error {
	if s.principal == "" {
		s.principal = osPrincipal()
	}
	if s.authz != nil {
		return nil
	}
	if len(f.AuditKey) == 0 { // a store from before the audit log
		if err := s.update(context.Background(), addAuditKey); err != nil {
			return err
		}
		var err error
		if f, rev, err = s.loadRev(context.Background()); err != nil {
			return err
		}
	}
	p, prev, err := s.readPolicy(context.Background(), f)
	if err != nil {
		return err
	}
	durability := audit.Batch
	if opts.AuditSync || f.AuditSync {
		durability = audit.Sync
	}
	st := &authzState{path: filepath.Join(s.dir, auditFile),
		options: audit.Options{Durability: durability, MACKey: f.AuditKey, Now: s.now}}
	st.follow.next = s.now().Add(policyRecheck)
	st.follow.policyRev, st.follow.stateRev = prev, rev
	if err := s.openAuditLog(st, f); err != nil {
		return err
	}
	st.directory.set(directory(f))
	eng, err := policy.NewEngine(p, policy.EngineConfig{Directory: &st.directory, Recorder: st, Now: s.now})
	if err != nil {
		if st.log != nil {
			_ = st.log.Close()
		}
		return err
	}
	st.engine = eng
	s.az, s.authz = st, eng
	return nil
}

func addAuditKey(f *storeFile) error {
	if len(f.AuditKey) > 0 {
		return nil
	}
	key, err := randomKey(audit.MinMACKeySize)
	f.AuditKey = key
	return err
}

// directory exposes keystore.json's principals section to the policy.
func directory(f *storeFile) policy.StaticDirectory {
	d := policy.StaticDirectory{Groups: map[string][]string{}, Tags: map[string]map[string]string{}}
	for p, c := range f.Principals {
		d.Groups[p], d.Tags[p] = c.Groups, c.Tags
	}
	return d
}

// readPolicy parses policy.json, or returns the owner's default policy when
// the store has none, with the policy document's revision. A store without
// a recorded owner belongs to the OS user.
func (s *Store) readPolicy(ctx context.Context, f *storeFile) (*policy.Policy, Revision, error) {
	data, rev, err := s.st.Read(ctx, PolicyDocument)
	if errors.Is(err, ErrNoDocument) {
		owner := f.Owner
		if owner == "" {
			owner = osPrincipal()
		}
		p, err := policy.DefaultPolicy(owner)
		return p, NoRevision, err
	}
	if err != nil {
		return nil, NoRevision, fmt.Errorf("keystore: read %s: %w", policyFile, err)
	}
	p, err := policy.Parse(data)
	if err != nil {
		return nil, NoRevision, fmt.Errorf("keystore: %s: %w", policyFile, err)
	}
	return p, rev, nil
}

// Principal returns who the store acts as.
func (s *Store) Principal() string { return s.principal }

// authorizeResource is authorize for the non-key resources ("policy",
// "audit").
func (s *Store) authorizeResource(ctx context.Context, action, resource string) error {
	if s.authz == nil {
		return nil
	}
	s.followPolicy()
	return s.authz.Authorize(ctx, scope(ctx, policy.Request{Principal: s.principal, Action: action, Resource: resource}))
}

// GetPolicy returns the policy in force (keystack:GetPolicy on "policy").
func (s *Store) GetPolicy(ctx context.Context) (*policy.Policy, error) {
	if err := s.authorizeResource(ctx, policy.ActionGetPolicy, policy.ResourcePolicy); err != nil {
		return nil, err
	}
	if s.az != nil {
		return s.az.engine.Policy(), nil
	}
	f, err := s.load()
	if err != nil {
		return nil, err
	}
	p, _, err := s.readPolicy(ctx, f)
	return p, err
}

// PutPolicy replaces the store's policy on behalf of its principal: it needs
// keystack:PutPolicy on "policy", and the new policy may grant nothing the
// principal does not hold itself (policy.IsSubset; ErrEscalation inside an
// ErrAccessDenied), and unless opts bypass it, p must still allow the
// principal keystack:PutPolicy (policy.ErrLockout inside an
// ErrAccessDenied; ResetPolicy is the way back). p is revalidated from its JSON form, then written to
// policy.json atomically (temporary file, fsync, rename) under the store's
// write lock. Stores opened with their own Authorizer fail with
// ErrNotSupported.
func (s *Store) PutPolicy(ctx context.Context, p *policy.Policy, opts policy.PutOptions) error {
	if s.az == nil {
		return fmt.Errorf("%w: the store was opened with its own Authorizer", ErrNotSupported)
	}
	if p == nil {
		return fmt.Errorf("%w: nil policy", policy.ErrInvalidPolicy)
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: %v", policy.ErrInvalidPolicy, err)
	}
	next, err := policy.Parse(data) // a Policy literal is not compiled
	if err != nil {
		return err
	}
	unlock, err := s.st.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	f, err := s.load()
	if err != nil {
		return err
	}
	cur, rev, err := s.readPolicy(ctx, f) // another process may have changed it
	if err != nil {
		return err
	}
	s.az.engine.SetPolicy(cur)
	if err := s.az.engine.PutPolicy(ctx, scope(ctx, policy.Request{Principal: s.principal}), next, opts); err != nil {
		return err
	}
	if err := s.writePolicy(ctx, data, rev); err != nil {
		s.az.engine.SetPolicy(cur)
		return err
	}
	return nil
}

// writePolicy replaces the policy document with data if its revision is
// still prev.
func (s *Store) writePolicy(ctx context.Context, data []byte, prev Revision) error {
	_, err := s.st.Write(ctx, PolicyDocument, append(data, '\n'), prev)
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("keystore: write %s: %w", policyFile, err)
	}
	return err
}

// SimulatePolicy decides req as enforcement would (policy.Engine.Simulate:
// the same policy in force, the same completion with the principal's
// groups and tags from the store's configuration) without acting on it or
// recording it. The decision reveals the policy, so the store's principal
// needs keystack:GetPolicy on "policy". Stores opened with their own
// Authorizer fail with ErrNotSupported: their decisions are not the
// policy file's.
func (s *Store) SimulatePolicy(ctx context.Context, req policy.Request) (policy.Decision, error) {
	if s.az == nil {
		return policy.Decision{}, fmt.Errorf("%w: the store was opened with its own Authorizer", ErrNotSupported)
	}
	if _, err := s.GetPolicy(ctx); err != nil {
		return policy.Decision{}, err
	}
	return s.az.engine.Simulate(req), nil
}
