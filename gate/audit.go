package gate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/keystack/keystack/internal/gatewire"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/internal/policyengine"
	"github.com/keystack/keystack/policy"
)

// openAuditLog opens the log at the anchor c records, first setting aside
// a log from before anchors existed. A log that fails verification leaves
// the gate open with g.damaged set, so that decisions fail closed but the
// log can still be verified and reset.
func (g *Gate) openAuditLog(ctx context.Context, c *gatewire.Config) error {
	if c.AuditAnchor == nil {
		var err error
		if c, err = g.startAnchoring(ctx); err != nil {
			return err
		}
	}
	anchor, err := g.keptAnchor(*c.AuditAnchor)
	g.epoch = anchor.Epoch
	g.detached.Store(c.AuditAnchor.Detached)
	g.anchors.start(g)
	opts := g.options
	opts.Anchor = &anchor.Anchor
	var log AuditSink
	if err == nil {
		log, err = g.dest.Open(ctx, opts)
	}
	if errors.Is(err, audit.ErrTampered) {
		g.damaged = fmt.Errorf("%w: %w", ErrAuditDamaged, err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("keystore: audit log: %w", err)
	}
	g.log = log
	return nil
}

// startAnchoring gives a store from before audit anchors its first one.
// Its log was chained without the key and cannot be continued: it is kept
// beside the new one, under a name saying so.
func (g *Gate) startAnchoring(ctx context.Context) (*gatewire.Config, error) {
	var c *gatewire.Config
	err := g.st.UpdateConfig(ctx, func(cur *gatewire.Config) error {
		c = cur
		if cur.AuditAnchor != nil {
			return gatewire.ErrUnchanged
		}
		if _, err := g.dest.SetAside(ctx, "unauthenticated", g.now()); err != nil {
			return err
		}
		cur.AuditAnchor = &gatewire.AuditAnchor{}
		// Past any anchor the destination kept of an earlier log.
		if kept, err := g.keptAnchor(*cur.AuditAnchor); err == nil && kept.Seq > 0 {
			cur.AuditAnchor.Epoch = kept.Epoch + 1
		}
		return nil
	})
	return c, err
}

// keptAnchor returns the anchor the log must hold: the state's, or the
// destination's (anchorKeeper) when that is ahead. A destination that has
// lost the anchors it kept, while the state says it keeps them, is
// tampering (audit.ErrTampered); the state's anchor is returned with it.
func (g *Gate) keptAnchor(state gatewire.AuditAnchor) (gatewire.AuditAnchor, error) {
	k, ok := g.keeper()
	if !ok {
		return state, nil
	}
	kept, err := k.loadAnchor(g.options.MACKey)
	switch {
	case errors.Is(err, errNoKeptAnchor) && state.Detached:
		return state, &audit.TamperError{Seq: state.Seq, Truncated: true, AnchorLost: true, Reason: err.Error()}
	case errors.Is(err, errNoKeptAnchor):
		return state, nil
	case err != nil:
		return state, err
	case anchorAhead(kept, state):
		return kept, nil
	}
	return state, nil
}

// keeper returns the destination as an anchorKeeper when it keeps the
// anchor's advances: it does, and there is an audit key to MAC them with.
func (g *Gate) keeper() (anchorKeeper, bool) {
	k, ok := g.dest.(anchorKeeper)
	return k, ok && len(g.options.MACKey) > 0
}

// advanceAnchor records a if it is past the anchor recorded (and of the
// same epoch): with the destination when it keeps anchors, else in the
// state. It runs without the gate's lock, as a Gate never takes the
// store's writers' lock while holding it.
func (g *Gate) advanceAnchor(ctx context.Context, epoch uint64, a audit.Anchor) error {
	if a.Seq == 0 {
		return nil
	}
	if k, ok := g.keeper(); ok {
		return g.keepAnchor(ctx, k, epoch, a)
	}
	behind := func(c *gatewire.Config) bool {
		return c.AuditAnchor != nil && c.AuditAnchor.Epoch == epoch && c.AuditAnchor.Seq < a.Seq
	}
	c, _, err := g.st.Config(ctx)
	if err != nil || !behind(c) {
		return err // nothing to do: checked without the lock, to spare a write
	}
	return g.st.UpdateConfig(ctx, func(c *gatewire.Config) error {
		if !behind(c) {
			return gatewire.ErrUnchanged
		}
		a.MAC = ""
		c.AuditAnchor = &gatewire.AuditAnchor{Anchor: a, Epoch: epoch}
		return nil
	})
}

// keepAnchor has the destination keep a; the first time, it then marks
// the state's anchor detached, so that losing the destination's anchors
// is seen as tampering. Until then the destination's anchors are not
// relied on, and damaged ones are replaced (after ResetAuditAnchor, say).
func (g *Gate) keepAnchor(ctx context.Context, k anchorKeeper, epoch uint64, a audit.Anchor) error {
	relied, err := g.anchorRelied(ctx)
	if err != nil {
		return err
	}
	if err := k.storeAnchor(g.options.MACKey, gatewire.AuditAnchor{Anchor: a, Epoch: epoch}, !relied); err != nil {
		return err
	}
	if relied {
		return nil
	}
	err = g.st.UpdateConfig(ctx, func(c *gatewire.Config) error {
		cur := c.AuditAnchor
		if cur == nil || cur.Epoch != epoch || cur.Detached {
			return gatewire.ErrUnchanged
		}
		next := gatewire.AuditAnchor{Anchor: cur.Anchor, Epoch: epoch, Detached: true}
		if a.Seq > cur.Seq {
			next.Anchor, next.MAC = a, ""
		}
		c.AuditAnchor = &next
		return nil
	})
	if err == nil {
		g.detached.Store(true)
	}
	return err
}

// anchorRelied reports whether the state's anchor is detached, so that
// the destination's anchors are evidence. Until g has seen it so, it
// reads the state: another process may have detached it since g opened.
func (g *Gate) anchorRelied(ctx context.Context) (bool, error) {
	if g.detached.Load() {
		return true, nil
	}
	c, _, err := g.st.Config(ctx)
	if err != nil {
		return false, err
	}
	if c.AuditAnchor != nil && c.AuditAnchor.Detached {
		g.detached.Store(true)
		return true, nil
	}
	return false, nil
}

// recorder is the policyengine.Recorder and policyengine.BatchRecorder the gate's
// engine records through: the gate's current log, failing closed once the
// log is closed or found damaged. For a denial the entry keeps the reason
// (which conditions failed), never shown to the requester.
type recorder struct{ g *Gate }

// RecordDecision implements policyengine.Recorder.
func (r recorder) RecordDecision(ctx context.Context, req policy.Request, d policy.Decision) error {
	return r.g.recordDecisions(ctx, []policy.Request{req}, []policy.Decision{d})
}

// RecordDecisions implements policyengine.BatchRecorder: one entry per decision,
// in order, appended together.
func (r recorder) RecordDecisions(ctx context.Context, reqs []policy.Request, ds []policy.Decision) error {
	return r.g.recordDecisions(ctx, reqs, ds)
}

func (g *Gate) recordDecisions(ctx context.Context, reqs []policy.Request, ds []policy.Decision) error {
	if len(reqs) != len(ds) {
		return fmt.Errorf("%w: %d requests for %d decisions", audit.ErrWrite, len(reqs), len(ds))
	}
	var arr [2]audit.Record
	rs := arr[:0]
	for i := range reqs {
		rs = append(rs, decisionRecord(reqs[i], ds[i]))
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.log == nil {
		return g.noLog()
	}
	if err := g.log.Append(ctx, rs...); err != nil {
		return err
	}
	g.anchors.maybe(g) // under g.mu, so Close's Wait follows every Add
	return nil
}

// RecordOperation appends r, a record of an operation no policy decides
// (a passphrase change, a failed unlock), to the gate's current log,
// failing closed once the log is closed or found damaged. A gate opened
// with its own Authorizer records nothing: its Authorizer keeps its own
// records.
func (g *Gate) recordOperation(ctx context.Context, r audit.Record) error {
	if g.engine == nil {
		return nil
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.log == nil {
		return g.noLog()
	}
	return g.log.Append(ctx, r)
}

// noLog is why there is no log to record into; the caller holds g.mu.
func (g *Gate) noLog() error {
	if g.damaged != nil {
		return g.damaged
	}
	return audit.ErrClosed // never nil: a decision must not pass unrecorded
}

func decisionRecord(req policy.Request, d policy.Decision) audit.Record {
	r := audit.Record{
		Type: audit.TypeDecision, Principal: req.Principal, Action: req.Action, Resource: req.Resource,
		KeyVersion: req.KeyVersion, Decision: string(d.Effect), Implicit: d.Implicit,
		Statements: d.Matched, EncryptionContext: req.EncryptionContext,
		RequestID: req.RequestID, AuthMethod: req.AuthMethod,
	}
	if req.SourceIP.IsValid() {
		r.Source = req.SourceIP.String()
	}
	if !d.Allowed() {
		r.Reason = denialReason(d)
	}
	return r
}

// maxReason bounds the denial reason copied into an entry.
const maxReason = 2048

// denialReason keeps the decision's structured reasons (statements that
// applied or failed on a condition, refusals such as escalation), not the
// lines about statements that concern others; a decision built without
// Reasons keeps its Explanation.
func denialReason(d policy.Decision) string {
	lines := d.Explanation
	if len(d.Reasons) > 0 {
		lines = make([]string, 0, len(d.Reasons))
		for _, r := range d.Reasons {
			lines = append(lines, r.Text)
		}
	}
	var b strings.Builder
	for _, s := range lines {
		if b.Len()+len(s)+2 > maxReason {
			b.WriteString("; …")
			break
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// authorizeAuditRead authorizes keystack:ReadAudit on "audit", recording
// the decision if record is set and the log is intact. When the log is
// damaged the decision cannot be recorded, yet reading the log is how the
// operator finds out where it is damaged: the policy then decides alone
// (a denial still refuses), as it always does for VerifyAudit, which
// writes nothing.
func (g *Gate) authorizeAuditRead(ctx context.Context, record bool) error {
	var err error
	if record {
		err = g.authorizeResource(ctx, policy.ActionReadAudit, policy.ResourceAudit)
		if err == nil || g.engine == nil || !errors.Is(err, ErrAuditDamaged) {
			return err
		}
	}
	if g.engine == nil { // a caller-supplied Authorizer records as it sees fit
		return g.authorizeResource(ctx, policy.ActionReadAudit, policy.ResourceAudit)
	}
	g.followPolicy()
	eng, nerr := policyengine.New(g.engine.Policy(), policyengine.Config{Directory: &g.directory, NoRecorder: true, Now: g.now})
	if nerr != nil {
		return nerr
	}
	return eng.Authorize(ctx, scope(ctx, policy.Request{Principal: g.principal, Action: policy.ActionReadAudit, Resource: policy.ResourceAudit}))
}

// AuditLog opens the audit log for reading (keystack:ReadAudit on
// "audit"); audit.Query parses it. The caller closes it.
func (g *Gate) AuditLog(ctx context.Context) (io.ReadCloser, error) {
	if err := g.authorizeAuditRead(ctx, true); err != nil {
		return nil, err
	}
	if g.dest == nil {
		return nil, ErrNotSupported
	}
	return g.dest.Read(ctx)
}

// VerifyAudit checks the whole audit log (keystack:ReadAudit on "audit")
// with the store's audit key: every entry's keyed chain hash and
// checkpoint MAC, and that it still holds the entry anchored in the
// store's state and each of the given anchors (exported earlier with
// AuditCheckpoint). It writes nothing, not even its own access decision
// (the policy is checked all the same), so that verifying cannot bless or
// move what it verifies; it reads the log as it is when it starts. It
// returns audit.Verify's report and a *audit.TamperError naming the first
// bad line; a missing log with an anchor past entry 0 is truncated.
func (g *Gate) VerifyAudit(ctx context.Context, anchors ...audit.Anchor) (*audit.VerifyReport, error) {
	if err := g.authorizeAuditRead(ctx, false); err != nil {
		return nil, err
	}
	if g.dest == nil {
		return nil, ErrNotSupported
	}
	c, _, err := g.st.Config(ctx)
	if err != nil {
		return nil, err
	}
	if len(c.AuditKey) == 0 {
		return nil, fmt.Errorf("%w: the store has none", audit.ErrNoKey)
	}
	var keptErr error
	if c.AuditAnchor != nil {
		var kept gatewire.AuditAnchor
		if kept, keptErr = g.keptAnchor(*c.AuditAnchor); kept.Seq > 0 {
			anchors = append(anchors, kept.Anchor)
		}
		if keptErr != nil && !errors.Is(keptErr, audit.ErrTampered) {
			return nil, keptErr
		}
	}
	rep, err := g.dest.Verify(ctx, audit.Key{MAC: c.AuditKey}, anchors...)
	return rep, cmp.Or(err, keptErr)
}

// AuditCheckpoint writes a checkpoint to the audit log, makes it durable,
// advances the state's anchor to it and returns it with its MAC
// (keystack:ReadAudit on "audit"), for the caller to keep where someone
// holding the audit key cannot rewrite it; VerifyAudit(ctx, anchor) later
// checks the log still holds it.
func (g *Gate) AuditCheckpoint(ctx context.Context) (audit.Anchor, error) {
	if err := g.authorizeResource(ctx, policy.ActionReadAudit, policy.ResourceAudit); err != nil {
		return audit.Anchor{}, err
	}
	if err := g.owned(); err != nil {
		return audit.Anchor{}, err
	}
	g.mu.RLock()
	log, epoch := g.log, g.epoch
	g.mu.RUnlock()
	if log == nil {
		return audit.Anchor{}, audit.ErrClosed
	}
	a, err := log.Checkpoint(ctx)
	if err != nil {
		return a, fmt.Errorf("keystore: audit log: %w", err)
	}
	if err := g.advanceAnchor(ctx, epoch, a); err != nil {
		return a, fmt.Errorf("keystore: audit anchor: %w", err)
	}
	return a, nil
}
