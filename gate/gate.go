package gate

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"sync"
	"time"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/internal/policyengine"
	"github.com/keystack/keystack/policy"
)

// Gate decides and records every request on one store. It is safe for
// concurrent use.
type Gate struct {
	st        State
	dest      AuditDestination
	principal string
	now       func() time.Time
	authz     policy.Authorizer    // what decides: engine, or the caller's own
	engine    *policyengine.Engine // nil with Options.Authorizer
	options   audit.Options

	mu      sync.RWMutex
	log     AuditSink // nil once closed or when damaged
	damaged error     // why log is nil: decisions fail with it
	epoch   uint64    // of the anchor the log was opened at (AuditAnchor.Epoch)
	anchors backgroundAnchor

	follow    policyFollower
	directory liveDirectory
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
	// Audit is where decisions are recorded; required without Authorizer.
	Audit AuditDestination
	// AuditSync commits every record durably before the operation
	// proceeds (audit.Sync); by default records are fsynced in batches.
	AuditSync bool
	// Now is the clock; time.Now by default.
	Now func() time.Time
}

// Errors of a Gate.
var (
	// ErrAuditDamaged is matched when the audit log failed verification
	// when the gate opened it: every decision is refused until an
	// operator runs ResetAuditAnchor.
	ErrAuditDamaged = errors.New("keystore: the audit log is damaged; every operation is refused (see `keystack audit verify`; to go on after investigating, `keystack audit reset-anchor --accept-loss`)")
	// ErrNotSupported is returned by policy administration and the audit
	// lifecycle of a gate opened with its own Authorizer: its decisions
	// are not the policy document's.
	ErrNotSupported = errors.New("gate: the store was opened with its own Authorizer")
)

// NewConfig returns the access-control configuration of a new store: its
// owner (owner, else the OS user), whether $KEYSTACK_PRINCIPAL is trusted,
// and a fresh audit key.
func NewConfig(owner string, trustPrincipalEnv bool) (Config, error) {
	if owner == "" {
		owner = OSPrincipal()
	}
	key, err := newAuditKey()
	if err != nil {
		return Config{}, err
	}
	return Config{Owner: owner, TrustPrincipalEnv: trustPrincipalEnv, AuditKey: key, AuditAnchor: &AuditAnchor{}}, nil
}

func newAuditKey() ([]byte, error) {
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

// Open builds the gate of a store. Without Options.Authorizer it builds
// the policy engine over the store's policy document (or the owner's
// default policy) with the principals' groups and tags from Config, and
// opens the audit log at the anchor Config records, so that no store
// works without a decision point. A log that fails verification leaves
// the gate open with every decision refused (ErrAuditDamaged).
func Open(ctx context.Context, st State, opts Options) (*Gate, error) {
	g := &Gate{st: st, dest: opts.Audit, principal: opts.Principal, now: opts.Now, authz: opts.Authorizer}
	if g.principal == "" {
		g.principal = OSPrincipal()
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.authz != nil {
		return g, nil
	}
	if g.dest == nil {
		return nil, errors.New("gate: Open without an audit destination")
	}
	c, rev, err := g.config(ctx)
	if err != nil {
		return nil, err
	}
	p, prev, err := g.readPolicy(ctx, c)
	if err != nil {
		return nil, err
	}
	durability := audit.Batch
	if opts.AuditSync || c.AuditSync {
		durability = audit.Sync
	}
	g.options = audit.Options{Durability: durability, MACKey: c.AuditKey, Now: g.now}
	g.follow.next = g.now().Add(policyRecheck)
	g.follow.policyRev, g.follow.stateRev = prev, rev
	if err := g.openAuditLog(ctx, c); err != nil {
		return nil, err
	}
	g.directory.set(directory(c))
	eng, err := policyengine.New(p, policyengine.Config{Directory: &g.directory, Recorder: recorder{g}, Now: g.now})
	if err != nil {
		if g.log != nil {
			_ = g.log.Close()
		}
		return nil, err
	}
	g.engine, g.authz = eng, eng
	return g, nil
}

// config reads the configuration, first giving a store from before the
// audit log its audit key.
func (g *Gate) config(ctx context.Context) (*Config, string, error) {
	c, rev, err := g.st.Config(ctx)
	if err != nil || len(c.AuditKey) > 0 {
		return c, rev, err
	}
	err = g.st.UpdateConfig(ctx, func(c *Config) error {
		if len(c.AuditKey) > 0 {
			return ErrUnchanged
		}
		key, err := newAuditKey()
		c.AuditKey = key
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return g.st.Config(ctx)
}

// Principal returns who the store acts as.
func (g *Gate) Principal() string { return g.principal }

// Authorize decides req, scoped to the Caller in ctx (WithCaller), after
// putting a replaced policy document in force, and records the decision.
func (g *Gate) Authorize(ctx context.Context, req policy.Request) error {
	g.followPolicy()
	return g.authz.Authorize(ctx, scope(ctx, req))
}

// multiAuthorizer is an Authorizer that decides several requests at once
// (policyengine.Engine.AuthorizeAll), recording them with one audit write.
type multiAuthorizer interface {
	AuthorizeAll(ctx context.Context, reqs ...policy.Request) error
}

// AuthorizeAll decides requests one operation needs together, in order as
// Authorize calls would (each only if those before are allowed), with one
// audit write when the decision point can.
func (g *Gate) AuthorizeAll(ctx context.Context, reqs ...policy.Request) error {
	return g.authorizeAll(ctx, slices.Clone(reqs))
}

// authorizeAll is AuthorizeAll scoping reqs in place: the caller gives
// them up.
func (g *Gate) authorizeAll(ctx context.Context, reqs []policy.Request) error {
	ma, ok := g.authz.(multiAuthorizer)
	if !ok {
		for _, r := range reqs {
			if err := g.Authorize(ctx, r); err != nil {
				return err
			}
		}
		return nil
	}
	g.followPolicy()
	for i := range reqs {
		reqs[i] = scope(ctx, reqs[i])
	}
	return ma.AuthorizeAll(ctx, reqs...)
}

// Close writes the audit log's closing checkpoint and advances the anchor
// in the store's state to it; later decisions fail closed. It is
// idempotent.
func (g *Gate) Close() error {
	if g == nil || g.engine == nil {
		return nil
	}
	defer g.anchors.wg.Wait() // after the unlock: a running advance needs the read lock
	g.mu.Lock()
	defer g.mu.Unlock()
	log := g.log
	if log == nil {
		return nil
	}
	g.log = nil
	g.damaged = audit.ErrClosed
	if err := log.Close(); err != nil {
		return err
	}
	if err := g.advanceAnchor(context.Background(), g.epoch, log.Anchor()); err != nil {
		return fmt.Errorf("keystore: audit anchor: %w", err)
	}
	return nil
}

// owned fails with ErrNotSupported for a gate opened with its own
// Authorizer.
func (g *Gate) owned() error {
	if g.engine == nil {
		return ErrNotSupported
	}
	return nil
}
