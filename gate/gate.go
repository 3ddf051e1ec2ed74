package gate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/gatewire"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/internal/policyengine"
	"github.com/keystack/keystack/policy"
)

// Gate decides and records every request on one store. It is safe for
// concurrent use.
type Gate struct {
	st        gatewire.State
	dest      AuditDestination
	principal string
	now       func() time.Time
	authz     policy.Authorizer    // what decides: engine, or the caller's own
	engine    *policyengine.Engine // nil with gatewire.Options.Authorizer
	options   audit.Options

	mu      sync.RWMutex
	log     AuditSink // nil once closed or when damaged
	damaged error     // why log is nil: decisions fail with it
	epoch   uint64    // of the anchor the log was opened at (gatewire.AuditAnchor.Epoch)
	anchors backgroundAnchor
	// detached: the state's anchor says the destination keeps the
	// advances (gatewire.AuditAnchor.Detached); set without g.mu.
	detached atomic.Bool

	follow    policyFollower
	directory liveDirectory
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

func init() { gatewire.Register(open) }

// open builds the gate of a store (gatewire.Open) and the Enforcer its
// store asks.
func open(ctx context.Context, st gatewire.State, dest AuditDestination, opts gatewire.Options) (*Gate, gatewire.Enforcer, error) {
	g, err := openGate(ctx, st, dest, opts)
	if err != nil {
		return nil, nil, err
	}
	return g, enforcer{g}, nil
}

func openGate(ctx context.Context, st gatewire.State, dest AuditDestination, opts gatewire.Options) (*Gate, error) {
	g := &Gate{st: st, dest: dest, principal: opts.Principal, now: opts.Now, authz: opts.Authorizer}
	if g.principal == "" {
		g.principal = gatewire.OSPrincipal()
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
func (g *Gate) config(ctx context.Context) (*gatewire.Config, string, error) {
	c, rev, err := g.st.Config(ctx)
	if err != nil || len(c.AuditKey) > 0 {
		return c, rev, err
	}
	err = g.st.UpdateConfig(ctx, func(c *gatewire.Config) error {
		if len(c.AuditKey) > 0 {
			return gatewire.ErrUnchanged
		}
		key, err := gatewire.NewAuditKey()
		c.AuditKey = key
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return g.st.Config(ctx)
}

// Authorize decides req, scoped to the Caller in ctx (WithCaller), after
// putting a replaced policy document in force, and records the decision.
func (g *Gate) authorize(ctx context.Context, req policy.Request) error {
	g.followPolicy()
	return g.authz.Authorize(ctx, scope(ctx, req))
}

// multiAuthorizer is an Authorizer that decides several requests at once
// (policyengine.Engine.AuthorizeAll), recording them with one audit write.
type multiAuthorizer interface {
	AuthorizeAll(ctx context.Context, reqs ...policy.Request) error
}

// authorizeAll decides requests one operation needs together, in order
// as authorize calls would (each only if those before are allowed), with
// one audit write when the decision point can. It scopes reqs in place:
// the caller gives them up.
func (g *Gate) authorizeAll(ctx context.Context, reqs []policy.Request) error {
	ma, ok := g.authz.(multiAuthorizer)
	if !ok {
		for _, r := range reqs {
			if err := g.authorize(ctx, r); err != nil {
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
func (g *Gate) close() error {
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

// enforcer is the gate as its store asks it (gatewire.Enforcer).
type enforcer struct{ g *Gate }

func (e enforcer) Authorize(ctx context.Context, req policy.Request) error {
	return e.g.authorize(ctx, req)
}

func (e enforcer) AuthorizeKey(ctx context.Context, action, name string, version int, ec map[string]string) error {
	return e.g.authorizeKey(ctx, action, name, version, ec)
}

func (e enforcer) AuthorizeKeyActions(ctx context.Context, actions []string, name string, version int, ec map[string]string) error {
	return e.g.authorizeKeyActions(ctx, actions, name, version, ec)
}

func (e enforcer) Keyring(inner envelope.Keyring, k gatewire.Key) envelope.Keyring {
	return e.g.keyring(inner, k)
}

func (e enforcer) KeyOf(kr envelope.Keyring) (gatewire.Key, bool) {
	if r, ok := kr.(*guardedKeyring); ok && r.g == e.g {
		return r.k, true
	}
	return gatewire.Key{}, false
}

func (e enforcer) RecordOperation(ctx context.Context, r audit.Record) error {
	return e.g.recordOperation(ctx, r)
}

func (e enforcer) RecordFailedUnlock(ctx context.Context) error { return e.g.recordFailedUnlock(ctx) }

func (e enforcer) Principal() string { return e.g.principal }

func (e enforcer) Close() error { return e.g.close() }
