// Package policyengine is keystack's policy decision point in operation:
// the [policy.Authorizer] that evaluates the policy in force, completes
// every request in one routine (time, the directory's groups and tags),
// records every decision before it takes effect (failing closed), and
// replaces the policy on behalf of a principal (escalation and lockout
// checks). The gate builds one per store; SDK users write and simulate
// policies with package policy.
package policyengine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync/atomic"
	"time"

	"github.com/keystack/keystack/policy"
)

// Recorder stores each decision durably (the audit log implements it).
// Engine refuses the request when RecordDecision fails.
type Recorder interface {
	RecordDecision(ctx context.Context, req policy.Request, d policy.Decision) error
}

// BatchRecorder is a Recorder that can store several decisions with one
// durable write (the audit log implements it); Engine.AuthorizeAll uses it.
type BatchRecorder interface {
	Recorder
	RecordDecisions(ctx context.Context, reqs []policy.Request, ds []policy.Decision) error
}

// Directory supplies a principal's groups and tags (from the keystore's
// configuration). They are merged with those already in the policy.Request.
type Directory interface {
	Lookup(principal string) (groups []string, tags map[string]string)
}

// StaticDirectory is a Directory backed by maps keyed by principal.
type StaticDirectory struct {
	Groups map[string][]string
	Tags   map[string]map[string]string
}

// Lookup implements Directory.
func (d StaticDirectory) Lookup(principal string) ([]string, map[string]string) {
	return d.Groups[principal], d.Tags[principal]
}

// Config configures an Engine. Recorder is required unless
// NoRecorder is set explicitly (tests, tools that audit elsewhere).
type Config struct {
	Directory  Directory
	Recorder   Recorder
	NoRecorder bool
	// Logger receives the reason for each denial at debug level.
	Logger *slog.Logger
	// Now returns the time used for keystack:CurrentTime when a request
	// carries none; time.Now by default.
	Now func() time.Time
}

// Engine is the Authorizer over a policy that can be replaced at any time;
// it is safe for concurrent use.
type Engine struct {
	cur atomic.Pointer[policy.Policy]
	cfg Config
}

var _ policy.Authorizer = (*Engine)(nil)

// New returns an Engine enforcing p (nil means deny everything).
func New(p *policy.Policy, cfg Config) (*Engine, error) {
	if cfg.Recorder == nil && !cfg.NoRecorder {
		return nil, errors.New("policyengine: New: a Recorder is required (decisions must be audited)")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg}
	e.cur.Store(p)
	return e, nil
}

// Policy returns the policy in force.
func (e *Engine) Policy() *policy.Policy { return e.cur.Load() }

// SetPolicy replaces the policy in force, atomically, without checks. Use
// PutPolicy for a write made on behalf of a principal.
func (e *Engine) SetPolicy(p *policy.Policy) { e.cur.Store(p) }

// Authorize evaluates req against the current policy, records the decision
// and returns nil only if the policy allows it and the record was written.
func (e *Engine) Authorize(ctx context.Context, req policy.Request) error {
	return e.authorize(ctx, e.complete(req))
}

func (e *Engine) authorize(ctx context.Context, req policy.Request) error {
	d := e.decide(e.Policy(), &req)
	if e.cfg.Recorder != nil {
		if err := e.cfg.Recorder.RecordDecision(ctx, req, d); err != nil {
			return e.auditFailed(ctx, req, err)
		}
	}
	return e.verdict(ctx, req, d)
}

// AuthorizeAll authorizes reqs in order as consecutive Authorize calls
// would, stopping at the first denial, but records the decisions it made
// together: with one durable write when the Recorder is a BatchRecorder.
// It returns nil only if every request is allowed and recorded. An
// operation that needs several permissions at once (a data key generated
// and wrapped for one message) pays for one audit write instead of two.
func (e *Engine) AuthorizeAll(ctx context.Context, reqs ...policy.Request) error {
	br, ok := e.cfg.Recorder.(BatchRecorder)
	if !ok || len(reqs) < 2 {
		for _, r := range reqs {
			if err := e.Authorize(ctx, r); err != nil {
				return err
			}
		}
		return nil
	}
	p := e.Policy()
	done := make([]policy.Request, 0, len(reqs))
	ds := make([]policy.Decision, 0, len(reqs))
	for _, r := range reqs {
		r = e.complete(r)
		d := e.decide(p, &r)
		done, ds = append(done, r), append(ds, d)
		if !d.Allowed() {
			break
		}
	}
	last := len(ds) - 1
	if err := br.RecordDecisions(ctx, done, ds); err != nil {
		return e.auditFailed(ctx, done[last], err)
	}
	return e.verdict(ctx, done[last], ds[last])
}

// decide evaluates req under p, explaining only denials: the explanation
// goes to the audit record and the debug log, and an allow needs neither.
func (e *Engine) decide(p *policy.Policy, req *policy.Request) policy.Decision {
	if d := p.Decide(*req); d.Allowed() {
		return d
	}
	return p.Evaluate(*req)
}

func (e *Engine) auditFailed(ctx context.Context, req policy.Request, err error) error {
	e.cfg.Logger.ErrorContext(ctx, "audit record failed; refusing", "principal", req.Principal, "action", req.Action, "err", err)
	return fmt.Errorf("%w: %w: %w", policy.ErrAccessDenied, policy.ErrAuditFailed, err)
}

// verdict turns a recorded decision into Authorize's result.
func (e *Engine) verdict(ctx context.Context, req policy.Request, d policy.Decision) error {
	if d.Allowed() {
		return nil
	}
	e.cfg.Logger.DebugContext(ctx, "access denied", "principal", req.Principal, "action", req.Action,
		"resource", req.Resource, "implicit", d.Implicit, "matched", d.Matched, "explanation", d.Explanation)
	return &policy.DeniedError{Action: req.Action, Resource: req.Resource, KeyVersion: req.KeyVersion, Principal: req.Principal}
}

// Simulate decides req as Authorize would, with the same completion (time,
// the directory's groups and tags) and the same policy, but records
// nothing and explains the decision. Simulation and enforcement therefore
// cannot disagree (TestSimulateMatchesAuthorize). The explanation reveals
// the policy: callers show it only to those allowed to read the policy.
func (e *Engine) Simulate(req policy.Request) policy.Decision {
	req = e.complete(req)
	return e.Policy().Evaluate(req)
}

// complete fills the time and merges the directory's groups and tags: the
// one request-completion routine of Authorize, AuthorizeAll, PutPolicy and
// Simulate.
func (e *Engine) complete(req policy.Request) policy.Request {
	if req.Time.IsZero() {
		req.Time = e.cfg.Now()
	}
	if e.cfg.Directory == nil {
		return req
	}
	groups, tags := e.cfg.Directory.Lookup(req.Principal)
	req.Groups = append(append([]string(nil), req.Groups...), groups...)
	if len(tags) > 0 {
		merged := maps.Clone(tags)
		maps.Copy(merged, req.PrincipalTags) // the request's own tags win
		req.PrincipalTags = merged
	}
	return req
}

// PutPolicy replaces the policy on behalf of req.Principal: the writer needs
// keystack:PutPolicy on "policy"; next may grant nothing the writer is not
// itself allowed (policy.IsSubset); and unless opts bypass it, next must still
// allow the writer keystack:PutPolicy, so that nobody locks themselves out
// by mistake (policy.ErrLockout). A refusal by any check is recorded.
func (e *Engine) PutPolicy(ctx context.Context, req policy.Request, next *policy.Policy, opts policy.PutOptions) error {
	req.Action, req.Resource = policy.ActionPutPolicy, policy.ResourcePolicy
	req = e.complete(req)
	cur := e.Policy()
	if err := e.authorize(ctx, req); err != nil {
		return err
	}
	if err := e.checkPut(req, cur, next, opts); err != nil {
		d := Refusal(policy.ReasonRefused, err.Error())
		if e.cfg.Recorder != nil {
			if rerr := e.cfg.Recorder.RecordDecision(ctx, req, d); rerr != nil {
				return fmt.Errorf("%w: %w: %w", policy.ErrAccessDenied, policy.ErrAuditFailed, rerr)
			}
		}
		return fmt.Errorf("%w: %w", policy.ErrAccessDenied, err)
	}
	if !e.cur.CompareAndSwap(cur, next) {
		return fmt.Errorf("%w: the policy changed concurrently; retry", policy.ErrAccessDenied)
	}
	return nil
}

// checkPut applies PutPolicy's escalation and lockout checks to the
// completed request req of the writer.
func (e *Engine) checkPut(req policy.Request, cur, next *policy.Policy, opts policy.PutOptions) error {
	if err := policy.IsSubset(next, cur, policy.Identity{Principal: req.Principal, Groups: req.Groups, Tags: req.PrincipalTags}); err != nil {
		return err
	}
	if !opts.BypassLockoutSafetyCheck && !next.Decide(req).Allowed() {
		return fmt.Errorf("%w: under the new policy %s may not %s on %s", policy.ErrLockout, req.Principal, policy.ActionPutPolicy, policy.ResourcePolicy)
	}
	return nil
}

// Refusal returns a denial decided outside evaluation (escalation,
// lockout, a refused break-glass reset), with its one reason of kind.
func Refusal(kind policy.ReasonKind, text string) policy.Decision {
	return policy.Decision{Effect: policy.Deny, Reasons: []policy.Reason{{Kind: kind, Text: text}}, Explanation: []string{text}}
}
