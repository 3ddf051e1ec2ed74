package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keystack/keystack/internal/gatewire"

	"github.com/keystack/keystack/internal/policyengine"
	"github.com/keystack/keystack/policy"
)

// policyFile names the policy document in errors.
const policyFile = "policy.json"

// directory exposes the configuration's principals section to the policy.
func directory(c *gatewire.Config) policyengine.StaticDirectory {
	d := policyengine.StaticDirectory{Groups: map[string][]string{}, Tags: map[string]map[string]string{}}
	for p, pc := range c.Principals {
		d.Groups[p], d.Tags[p] = pc.Groups, pc.Tags
	}
	return d
}

// readPolicy parses the policy document, or returns the owner's default
// policy when the store has none, with the document's revision. A store
// without a recorded owner belongs to the OS user.
func (g *Gate) readPolicy(ctx context.Context, c *gatewire.Config) (*policy.Policy, string, error) {
	data, rev, err := g.st.ReadPolicy(ctx)
	if errors.Is(err, gatewire.ErrNoPolicy) {
		p, err := policy.DefaultPolicy(owner(c))
		return p, "", err
	}
	if err != nil {
		return nil, "", fmt.Errorf("keystore: read %s: %w", policyFile, err)
	}
	p, err := policy.Parse(data)
	if err != nil {
		return nil, "", fmt.Errorf("keystore: %s: %w", policyFile, err)
	}
	return p, rev, nil
}

// owner is the store's owner: the recorded one, else the OS user.
func owner(c *gatewire.Config) string {
	if c.Owner != "" {
		return c.Owner
	}
	return gatewire.OSPrincipal()
}

// authorizeResource authorizes the store's principal (or the Caller in
// ctx) for action on a resource that is no key ("policy", "audit").
func (g *Gate) authorizeResource(ctx context.Context, action, resource string) error {
	return g.authorize(ctx, policy.Request{Principal: g.principal, Action: action, Resource: resource})
}

// GetPolicy returns the policy in force (keystack:GetPolicy on "policy").
// A gate opened with its own Authorizer returns the store's policy
// document all the same.
func (g *Gate) GetPolicy(ctx context.Context) (*policy.Policy, error) {
	if err := g.authorizeResource(ctx, policy.ActionGetPolicy, policy.ResourcePolicy); err != nil {
		return nil, err
	}
	if g.engine != nil {
		return g.engine.Policy(), nil
	}
	c, _, err := g.st.Config(ctx)
	if err != nil {
		return nil, err
	}
	p, _, err := g.readPolicy(ctx, c)
	return p, err
}

// PutPolicy replaces the store's policy on behalf of its principal: it
// needs keystack:PutPolicy on "policy", and the new policy may grant
// nothing the principal does not hold itself (policy.IsSubset;
// ErrEscalation inside an ErrAccessDenied), and unless opts bypass it, p
// must still allow the principal keystack:PutPolicy (policy.ErrLockout
// inside an ErrAccessDenied; ResetPolicy is the way back). p is
// revalidated from its JSON form, then written to the policy document
// atomically under the store's write lock. A gate opened with its own
// Authorizer fails with ErrNotSupported.
func (g *Gate) PutPolicy(ctx context.Context, p *policy.Policy, opts policy.PutOptions) error {
	if err := g.owned(); err != nil {
		return err
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
	c, unlock, err := g.lockedConfig(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	cur, rev, err := g.readPolicy(ctx, c) // another process may have changed it
	if err != nil {
		return err
	}
	g.engine.SetPolicy(cur)
	if err := g.engine.PutPolicy(ctx, scope(ctx, policy.Request{Principal: g.principal}), next, opts); err != nil {
		return err
	}
	if err := g.st.WritePolicy(ctx, append(data, '\n'), rev); err != nil {
		g.engine.SetPolicy(cur)
		return err
	}
	return nil
}

// SimulatePolicy decides req as enforcement would (policyengine.Engine.Simulate:
// the same policy in force, the same completion with the principal's
// groups and tags from the store's configuration) without acting on it or
// recording it. The decision reveals the policy, so the store's principal
// needs keystack:GetPolicy on "policy". A gate opened with its own
// Authorizer fails with ErrNotSupported: its decisions are not the policy
// document's.
func (g *Gate) SimulatePolicy(ctx context.Context, req policy.Request) (policy.Decision, error) {
	if err := g.owned(); err != nil {
		return policy.Decision{}, err
	}
	if _, err := g.GetPolicy(ctx); err != nil {
		return policy.Decision{}, err
	}
	return g.engine.Simulate(req), nil
}

// resetAction names the break-glass reset in the audit log. No policy
// grants or denies the local reset: the keystore passphrase authorizes
// it. ResetPolicyFor (the key server's) needs the policy as well.
const resetAction = policy.ActionResetPolicy

// ResetPolicy is the keystore owner's break-glass: it replaces the policy
// with the owner-only default (policy.DefaultPolicy of the owner recorded
// at init) whatever the policy in force says, so that a policy that locks
// everyone out can be undone. It requires the keystore passphrase, not any
// permission; a keystore without a passphrase can be reset only by its
// owner principal. Every attempt, allowed or refused, is recorded in the
// audit log before anything is written (failing closed). It returns the
// owner.
func (g *Gate) ResetPolicy(ctx context.Context) (string, error) {
	if err := g.owned(); err != nil {
		return "", err
	}
	c, unlock, err := g.lockedConfig(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	rev, err := g.st.PolicyRevision(ctx)
	if err != nil {
		return "", fmt.Errorf("keystore: read %s: %w", policyFile, err)
	}
	owner := owner(c)
	if err := g.proveOwner(ctx, owner); err != nil {
		return "", g.recordReset(ctx, policyengine.Refusal(policy.ReasonRefused, "break-glass reset refused: "+err.Error()), err)
	}
	text := "break-glass reset: keystore passphrase verified; owner-only policy for " + owner
	if err := g.installOwnerOnly(ctx, owner, rev, text, func(allow policy.Decision) error { return g.recordReset(ctx, allow, nil) }); err != nil {
		return "", err
	}
	return owner, nil
}

// installOwnerOnly ends an allowed break-glass reset: it records the
// allowing decision (text its reason) through record first, then writes
// the owner-only default policy over revision rev and enforces it at once.
func (g *Gate) installOwnerOnly(ctx context.Context, owner string, rev string, text string, record func(policy.Decision) error) error {
	p, err := policy.DefaultPolicy(owner)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	allow := policy.Decision{Effect: policy.Allow, Reasons: []policy.Reason{{Kind: policy.ReasonBreakGlass, Text: text}}, Explanation: []string{text}}
	if err := record(allow); err != nil {
		return err
	}
	if err := g.st.WritePolicy(ctx, append(data, '\n'), rev); err != nil {
		return err
	}
	g.engine.SetPolicy(p)
	return nil
}

// proveOwner checks the passphrase of a sealed store, or that the gate's
// principal is its owner when the store has no passphrase.
func (g *Gate) proveOwner(ctx context.Context, owner string) error {
	sealed, err := g.st.CheckPassphrase(ctx)
	if err != nil || sealed {
		return err
	}
	if g.principal != owner {
		return &policy.DeniedError{Action: resetAction, Resource: policy.ResourcePolicy, Principal: g.principal}
	}
	return nil
}

// recordReset records a reset attempt's decision d and returns cause (nil
// when allowed), or an audit failure, which refuses the reset.
func (g *Gate) recordReset(ctx context.Context, d policy.Decision, cause error) error {
	req := policy.Request{Principal: g.principal, Action: resetAction, Resource: policy.ResourcePolicy, Time: g.now()}
	if err := g.recordDecisions(ctx, []policy.Request{req}, []policy.Decision{d}); err != nil {
		return fmt.Errorf("%w: %w: %w", policy.ErrAccessDenied, policy.ErrAuditFailed, err)
	}
	return cause
}

// ResetPolicyFor is the key server's ResetPolicy for the Caller in ctx
// (WithCaller): the policy in force must allow the Caller
// keystack:ResetPolicy on "policy" AND local must be true (the server
// found the Caller on its Unix socket with the uid that owns the keystore
// directory). Otherwise it fails with an ErrAccessDenied and writes
// nothing. Every attempt is recorded, for the Caller, before anything is
// written (one record: allowed, denied or refused). It returns the owner.
func (g *Gate) ResetPolicyFor(ctx context.Context, local bool) (string, error) {
	if err := g.owned(); err != nil {
		return "", err
	}
	if callerOf(ctx) == nil {
		return "", fmt.Errorf("%w: ResetPolicyFor needs a Caller", ErrNotSupported)
	}
	c, unlock, err := g.lockedConfig(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	cur, rev, err := g.readPolicy(ctx, c) // decide under the document in force now
	if err != nil {
		return "", err
	}
	g.engine.SetPolicy(cur)
	req := scope(ctx, policy.Request{Principal: g.principal, Action: resetAction, Resource: policy.ResourcePolicy, Time: g.now()})
	d := g.engine.Simulate(req)
	denied := &policy.DeniedError{Action: resetAction, Resource: policy.ResourcePolicy, Principal: req.Principal}
	if !d.Allowed() {
		return "", g.recordResetFor(ctx, req, d, denied)
	}
	if !local {
		d = policyengine.Refusal(policy.ReasonRefused, "break-glass reset over the key server needs the keystore directory's owner on the Unix socket")
		return "", g.recordResetFor(ctx, req, d, denied)
	}
	owner := owner(c)
	text := "break-glass reset over the key server: allowed by the policy, caller owns the keystore directory; owner-only policy for " + owner
	if err := g.installOwnerOnly(ctx, owner, rev, text, func(allow policy.Decision) error { return g.recordResetFor(ctx, req, allow, nil) }); err != nil {
		return "", err
	}
	return owner, nil
}

// recordResetFor records a server reset attempt's decision d for req and
// returns cause (nil when allowed), or an audit failure, which refuses it.
func (g *Gate) recordResetFor(ctx context.Context, req policy.Request, d policy.Decision, cause error) error {
	if err := g.recordDecisions(ctx, []policy.Request{req}, []policy.Decision{d}); err != nil {
		return fmt.Errorf("%w: %w: %w", policy.ErrAccessDenied, policy.ErrAuditFailed, err)
	}
	return cause
}

// lockedConfig takes the store's writers' lock and reads the
// configuration under it; the caller calls unlock when done.
func (g *Gate) lockedConfig(ctx context.Context) (c *gatewire.Config, unlock func(), err error) {
	unlock, err = g.st.Lock(ctx)
	if err != nil {
		return nil, nil, err
	}
	if c, _, err = g.st.Config(ctx); err != nil {
		unlock()
		return nil, nil, err
	}
	return c, unlock, nil
}
