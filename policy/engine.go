package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync/atomic"
	"time"
)

// Authorizer is the single decision point operations call before acting.
// Authorize returns nil to allow, or an error matching ErrAccessDenied; any
// non-nil error means the operation must be refused.
type Authorizer interface {
	Authorize(ctx context.Context, req Request) error
}

// Recorder stores each decision durably (the audit log implements it).
// Engine refuses the request when RecordDecision fails.
type Recorder interface {
	RecordDecision(ctx context.Context, req Request, d Decision) error
}

// BatchRecorder is a Recorder that can store several decisions with one
// durable write (the audit log implements it); Engine.AuthorizeAll uses it.
type BatchRecorder interface {
	Recorder
	RecordDecisions(ctx context.Context, reqs []Request, ds []Decision) error
}

// Directory supplies a principal's groups and tags (from the keystore's
// configuration). They are merged with those already in the Request.
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

// EngineConfig configures an Engine. Recorder is required unless
// NoRecorder is set explicitly (tests, tools that audit elsewhere).
type EngineConfig struct {
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
	policy atomic.Pointer[Policy]
	cfg    EngineConfig
}

var _ Authorizer = (*Engine)(nil)

// NewEngine returns an Engine enforcing p (nil means deny everything).
func NewEngine(p *Policy, cfg EngineConfig) (*Engine, error) {
	if cfg.Recorder == nil && !cfg.NoRecorder {
		return nil, errors.New("policy: NewEngine: a Recorder is required (decisions must be audited)")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg}
	e.policy.Store(p)
	return e, nil
}

// Policy returns the policy in force.
func (e *Engine) Policy() *Policy { return e.policy.Load() }

// SetPolicy replaces the policy in force, atomically, without checks. Use
// PutPolicy for a write made on behalf of a principal.
func (e *Engine) SetPolicy(p *Policy) { e.policy.Store(p) }

// Authorize evaluates req against the current policy, records the decision
// and returns nil only if the policy allows it and the record was written.
func (e *Engine) Authorize(ctx context.Context, req Request) error {
	return e.authorize(ctx, e.complete(req))
}

func (e *Engine) authorize(ctx context.Context, req Request) error {
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
func (e *Engine) AuthorizeAll(ctx context.Context, reqs ...Request) error {
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
	done := make([]Request, 0, len(reqs))
	ds := make([]Decision, 0, len(reqs))
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
func (e *Engine) decide(p *Policy, req *Request) Decision {
	if d := p.decide(req); d.Allowed() {
		return d
	}
	return p.Evaluate(*req)
}

func (e *Engine) auditFailed(ctx context.Context, req Request, err error) error {
	e.cfg.Logger.ErrorContext(ctx, "audit record failed; refusing", "principal", req.Principal, "action", req.Action, "err", err)
	return fmt.Errorf("%w: %w: %w", ErrAccessDenied, ErrAuditFailed, err)
}

// verdict turns a recorded decision into Authorize's result.
func (e *Engine) verdict(ctx context.Context, req Request, d Decision) error {
	if d.Allowed() {
		return nil
	}
	e.cfg.Logger.DebugContext(ctx, "access denied", "principal", req.Principal, "action", req.Action,
		"resource", req.Resource, "implicit", d.Implicit, "matched", d.Matched, "explanation", d.Explanation)
	return &DeniedError{Action: req.Action, Resource: req.Resource, KeyVersion: req.KeyVersion, Principal: req.Principal}
}

// Simulate decides req as Authorize would, with the same completion (time,
// the directory's groups and tags) and the same policy, but records
// nothing and explains the decision. Simulation and enforcement therefore
// cannot disagree (TestSimulateMatchesAuthorize). The explanation reveals
// the policy: callers show it only to those allowed to read the policy.
func (e *Engine) Simulate(req Request) Decision {
	req = e.complete(req)
	return e.Policy().Evaluate(req)
}

// complete fills the time and merges the directory's groups and tags: the
// one request-completion routine of Authorize, AuthorizeAll, PutPolicy and
// Simulate.
func (e *Engine) complete(req Request) Request {
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

// PutOptions modify PutPolicy.
type PutOptions struct {
	// BypassLockoutSafetyCheck allows a policy under which the writer may
	// no longer replace the policy (as AWS KMS PutKeyPolicy's flag of the
	// same name). Only the keystore owner's break-glass reset undoes it.
	BypassLockoutSafetyCheck bool
}

// PutPolicy replaces the policy on behalf of req.Principal: the writer needs
// keystack:PutPolicy on "policy"; next may grant nothing the writer is not
// itself allowed (IsSubset); and unless opts bypass it, next must still
// allow the writer keystack:PutPolicy, so that nobody locks themselves out
// by mistake (ErrLockout). A refusal by any check is recorded.
func (e *Engine) PutPolicy(ctx context.Context, req Request, next *Policy, opts PutOptions) error {
	req.Action, req.Resource = ActionPutPolicy, ResourcePolicy
	req = e.complete(req)
	cur := e.Policy()
	if err := e.authorize(ctx, req); err != nil {
		return err
	}
	if err := e.checkPut(req, cur, next, opts); err != nil {
		d := Refusal(ReasonRefused, err.Error())
		if e.cfg.Recorder != nil {
			if rerr := e.cfg.Recorder.RecordDecision(ctx, req, d); rerr != nil {
				return fmt.Errorf("%w: %w: %w", ErrAccessDenied, ErrAuditFailed, rerr)
			}
		}
		return fmt.Errorf("%w: %w", ErrAccessDenied, err)
	}
	if !e.policy.CompareAndSwap(cur, next) {
		return fmt.Errorf("%w: the policy changed concurrently; retry", ErrAccessDenied)
	}
	return nil
}

// checkPut applies PutPolicy's escalation and lockout checks to the
// completed request req of the writer.
func (e *Engine) checkPut(req Request, cur, next *Policy, opts PutOptions) error {
	if err := IsSubset(next, cur, Identity{Principal: req.Principal, Groups: req.Groups, Tags: req.PrincipalTags}); err != nil {
		return err
	}
	if !opts.BypassLockoutSafetyCheck && !next.decide(&req).Allowed() {
		return fmt.Errorf("%w: under the new policy %s may not %s on %s", ErrLockout, req.Principal, ActionPutPolicy, ResourcePolicy)
	}
	return nil
}
