package keystore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/internal/fsx"
	"github.com/keystack/keystack/policy"
)

// auditAnchor is keystore.json's record of the audit log's last entry
// known to be on stable storage (audit.Anchor). A log that no longer holds
// it was truncated, deleted or replaced by an older copy, and the store
// refuses to record into it. Epoch counts ResetAuditAnchor calls, so that
// a process still holding the log from before a reset cannot move the
// anchor of the new one. Stores from before anchors have none (nil).
type auditAnchor struct {
	audit.Anchor
	Epoch uint64 `json:"epoch,omitempty"`
}

// ErrAuditDamaged is matched when the audit log failed verification when
// the store opened it: every decision is refused until an operator runs
// ResetAuditAnchor.
var ErrAuditDamaged = errors.New("keystore: the audit log is damaged; every operation is refused (see `keystack audit verify`; to go on after investigating, `keystack audit reset-anchor --accept-loss`)")

// openAuditLog opens audit.log at the anchor keystore.json records, first
// setting aside a log from before anchors existed. A log that fails
// verification leaves the store open with a.damaged set, so that decisions
// fail closed but the log can still be verified and reset.
func (s *Store) openAuditLog(st *authzState, f *storeFile) error {
	if f.AuditAnchor == nil {
		var err error
		if f, err = s.startAnchoring(); err != nil {
			return err
		}
	}
	st.epoch = f.AuditAnchor.Epoch
	st.anchors.start(s)
	opts := st.options
	opts.Anchor = &f.AuditAnchor.Anchor
	log, err := audit.Open(st.path, opts)
	if errors.Is(err, audit.ErrTampered) {
		st.damaged = fmt.Errorf("%w: %w", ErrAuditDamaged, err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("keystore: audit log: %w", err)
	}
	st.log = log
	return nil
}

// startAnchoring gives a store from before audit anchors its first one.
// Its log was chained without the key and cannot be continued: it is kept
// beside the new one, under a name saying so.
func (s *Store) startAnchoring() (*storeFile, error) {
	var f *storeFile
	err := s.update(context.Background(), func(cur *storeFile) error {
		f = cur
		if cur.AuditAnchor != nil {
			return nil
		}
		if err := setAsideLog(s.dir, "unauthenticated", s.now()); err != nil {
			return err
		}
		cur.AuditAnchor = &auditAnchor{}
		return nil
	})
	return f, err
}

// setAsideLog renames audit.log, if there is one, to
// audit.log.<why>-<time> and returns the new name ("" if none).
func setAsideLogName(dir, why string, now time.Time) (string, error) {
	name := auditFile + "." + why + "-" + now.UTC().Format("20060102T150405.000000000Z")
	err := os.Rename(filepath.Join(dir, auditFile), filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("keystore: audit log: %w", err)
	}
	return name, fsyncDir(dir)
}

// fsyncDir makes a rename in dir durable.
func fsyncDir(dir string) error {
	if err := fsx.SyncPath(dir); err != nil {
		return fmt.Errorf("keystore: audit log: %w", err)
	}
	return nil
}

func setAsideLog(dir, why string, now time.Time) error {
	_, err := setAsideLogName(dir, why, now)
	return err
}

// advanceAuditAnchor records a in keystore.json if it is past the anchor
// there (and of the same epoch). It runs without the audit log's lock, as
// a Store never takes keystore.lock while holding it.
func (s *Store) advanceAuditAnchor(ctx context.Context, epoch uint64, a audit.Anchor) error {
	if a.Seq == 0 {
		return nil
	}
	f, err := s.load()
	if err != nil || f.AuditAnchor == nil || f.AuditAnchor.Epoch != epoch || f.AuditAnchor.Seq >= a.Seq {
		return err // nothing to do: checked without the lock, to spare a write
	}
	return s.update(ctx, func(f *storeFile) error {
		if f.AuditAnchor == nil || f.AuditAnchor.Epoch != epoch || f.AuditAnchor.Seq >= a.Seq {
			return errUnchanged
		}
		a.MAC = ""
		f.AuditAnchor = &auditAnchor{Anchor: a, Epoch: epoch}
		return nil
	})
}

// closeAudit writes the audit log's closing checkpoint and advances the
// anchor in keystore.json to it; later decisions fail closed. It is
// idempotent.
func (s *Store) closeAudit() error {
	if s.az == nil {
		return nil
	}
	defer s.az.anchors.wg.Wait() // after the unlock: a running advance needs the read lock
	s.az.mu.Lock()
	defer s.az.mu.Unlock()
	log := s.az.log
	if log == nil {
		return nil
	}
	s.az.log = nil
	s.az.damaged = audit.ErrClosed
	if err := log.Close(); err != nil {
		return err
	}
	if err := s.advanceAuditAnchor(context.Background(), s.az.epoch, log.Anchor()); err != nil {
		return fmt.Errorf("keystore: audit anchor: %w", err)
	}
	return nil
}

// RecordDecision implements policy.Recorder over the store's current log,
// failing closed once the log is closed or found damaged. For a denial the
// entry keeps the reason (which conditions failed), never shown to the
// requester.
func (a *authzState) RecordDecision(ctx context.Context, req policy.Request, d policy.Decision) error {
	return a.RecordDecisions(ctx, []policy.Request{req}, []policy.Decision{d})
}

// RecordDecisions implements policy.BatchRecorder: one entry per decision,
// in order, written together.
func (a *authzState) RecordDecisions(ctx context.Context, reqs []policy.Request, ds []policy.Decision) error {
	if len(reqs) != len(ds) {
		return fmt.Errorf("%w: %d requests for %d decisions", audit.ErrWrite, len(reqs), len(ds))
	}
	var arr [2]audit.Record
	rs := arr[:0]
	for i := range reqs {
		rs = append(rs, decisionRecord(reqs[i], ds[i]))
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.log == nil {
		return a.noLog()
	}
	if err := a.log.AppendAll(ctx, rs...); err != nil {
		return err
	}
	a.anchors.maybe(a) // under a.mu, so closeAudit's Wait follows every Add
	return nil
}

// noLog is why there is no log to record into; the caller holds a.mu.
func (a *authzState) noLog() error {
	if a.damaged != nil {
		return a.damaged
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
func (s *Store) authorizeAuditRead(ctx context.Context, record bool) error {
	var err error
	if record {
		err = s.authorizeResource(ctx, policy.ActionReadAudit, policy.ResourceAudit)
		if err == nil || s.az == nil || !errors.Is(err, ErrAuditDamaged) {
			return err
		}
	}
	if s.az == nil { // a caller-supplied Authorizer records as it sees fit
		return s.authorizeResource(ctx, policy.ActionReadAudit, policy.ResourceAudit)
	}
	s.followPolicy()
	eng, nerr := policy.NewEngine(s.az.engine.Policy(), policy.EngineConfig{Directory: &s.az.directory, NoRecorder: true, Now: s.now})
	if nerr != nil {
		return nerr
	}
	return eng.Authorize(ctx, scope(ctx, policy.Request{Principal: s.principal, Action: policy.ActionReadAudit, Resource: policy.ResourceAudit}))
}

// AuditLog opens the audit log for reading (keystack:ReadAudit on
// "audit"); audit.Query parses it. The caller closes it.
func (s *Store) AuditLog(ctx context.Context) (io.ReadCloser, error) {
	if err := s.authorizeAuditRead(ctx, true); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(s.dir, auditFile))
	if err != nil {
		return nil, fmt.Errorf("keystore: audit log: %w", err)
	}
	return f, nil
}

// VerifyAudit checks the whole audit log (keystack:ReadAudit on "audit")
// with the store's audit key: every entry's keyed chain hash and
// checkpoint MAC, and that it still holds the entry anchored in
// keystore.json and each of the given anchors (exported earlier with
// AuditCheckpoint). It writes nothing, not even its own access decision
// (the policy is checked all the same), so that verifying cannot bless or
// move what it verifies; it reads the log as it is when it starts. It returns
// audit.Verify's report and a *audit.TamperError naming the first bad
// line; a missing log with an anchor past entry 0 is truncated.
func (s *Store) VerifyAudit(ctx context.Context, anchors ...audit.Anchor) (*audit.VerifyReport, error) {
	if err := s.authorizeAuditRead(ctx, false); err != nil {
		return nil, err
	}
	f, err := s.load()
	if err != nil {
		return nil, err
	}
	if len(f.AuditKey) == 0 {
		return nil, fmt.Errorf("%w: the store has no audit key", ErrCorruptStore)
	}
	if f.AuditAnchor != nil && f.AuditAnchor.Seq > 0 {
		anchors = append(anchors, f.AuditAnchor.Anchor)
	}
	lf, err := os.Open(filepath.Join(s.dir, auditFile))
	if errors.Is(err, fs.ErrNotExist) {
		rep, verr := audit.Verify(strings.NewReader(""), audit.Key{MAC: f.AuditKey}, anchors...)
		if verr != nil {
			verr = fmt.Errorf("the audit log file is missing: %w", verr)
		}
		return rep, verr
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: audit log: %w", err)
	}
	defer lf.Close()
	fi, err := lf.Stat()
	if err != nil {
		return nil, fmt.Errorf("keystore: audit log: %w", err)
	}
	return audit.Verify(io.LimitReader(lf, fi.Size()), audit.Key{MAC: f.AuditKey}, anchors...)
}

// AuditCheckpoint writes a checkpoint to the audit log, fsyncs it,
// advances keystore.json's anchor to it and returns it with its MAC
// (keystack:ReadAudit on "audit"), for the caller to keep where someone
// holding the audit key cannot rewrite it; VerifyAudit(ctx, anchor) later
// checks the log still holds it.
func (s *Store) AuditCheckpoint(ctx context.Context) (audit.Anchor, error) {
	if err := s.authorizeResource(ctx, policy.ActionReadAudit, policy.ResourceAudit); err != nil {
		return audit.Anchor{}, err
	}
	if s.az == nil {
		return audit.Anchor{}, fmt.Errorf("%w: the store was opened with its own Authorizer", ErrNotSupported)
	}
	s.az.mu.RLock()
	log, epoch := s.az.log, s.az.epoch
	s.az.mu.RUnlock()
	if log == nil {
		return audit.Anchor{}, audit.ErrClosed
	}
	a, err := log.Checkpoint(ctx)
	if err != nil {
		return a, fmt.Errorf("keystore: audit log: %w", err)
	}
	if err := s.advanceAuditAnchor(ctx, epoch, a); err != nil {
		return a, fmt.Errorf("keystore: audit anchor: %w", err)
	}
	return a, nil
}

// ResetAuditAnchor is the operator's way out after the audit log was found
// damaged (truncated, deleted, edited): it accepts that the records after
// the last intact point are lost. It needs the store's passphrase (not the
// policy, which cannot record anything while the log is damaged), sets the
// damaged log aside as audit.log.damaged-<time>, and starts a new log whose
// first entry says who reset it, which anchor was abandoned and where the
// old log went. It returns that name ("" if there was no log). Other
// processes holding the old log keep writing into the set-aside file until
// they exit; stop them first.
func (s *Store) ResetAuditAnchor(ctx context.Context) (string, error) {
	if s.az == nil {
		return "", fmt.Errorf("%w: the store was opened with its own Authorizer", ErrNotSupported)
	}
	f, err := s.load()
	if err != nil {
		return "", err
	}
	kek, err := s.unlockKEK(f) // the passphrase is the authority here
	if err != nil {
		return "", err
	}
	clear(kek)
	s.az.mu.Lock()
	defer s.az.mu.Unlock()
	if s.az.log != nil {
		_ = s.az.log.Close() // its anchor is abandoned with it
		s.az.log = nil
	}
	var old auditAnchor
	var moved string
	err = s.update(ctx, func(f *storeFile) error {
		if f.AuditAnchor != nil {
			old = *f.AuditAnchor
		}
		var err error
		if moved, err = setAsideLogName(s.dir, "damaged", s.now()); err != nil {
			return err
		}
		f.AuditAnchor = &auditAnchor{Epoch: old.Epoch + 1}
		return nil
	})
	if err != nil {
		return "", err
	}
	s.az.epoch = old.Epoch + 1
	return moved, s.startAfterReset(ctx, old, moved)
}

// startAfterReset writes the new log's first entry and anchors it; the
// caller holds s.az.mu.
func (s *Store) startAfterReset(ctx context.Context, old auditAnchor, moved string) error {
	s.az.damaged = audit.ErrClosed
	log, err := audit.Open(s.az.path, s.az.options)
	if err != nil {
		return fmt.Errorf("keystore: audit log: %w", err)
	}
	if moved == "" {
		moved = "(none: it was missing)"
	}
	note := audit.Record{Type: audit.TypeNote, Principal: s.principal, Action: "keystack:ResetAuditAnchor", Resource: policy.ResourceAudit, Outcome: "ok",
		Reason: fmt.Sprintf("audit anchor reset with the passphrase, accepting loss: abandoned anchor entry %d (head %s, %s, epoch %d); previous log kept as %s",
			old.Seq, old.Head, anchorTimeOf(old.Anchor), old.Epoch, moved)}
	if err := log.Append(ctx, note); err != nil {
		_ = log.Close()
		return fmt.Errorf("keystore: audit log: %w", err)
	}
	cp, err := log.Checkpoint(ctx)
	if err == nil {
		err = s.advanceAuditAnchor(ctx, s.az.epoch, cp)
	}
	if err != nil {
		_ = log.Close()
		return fmt.Errorf("keystore: audit anchor: %w", err)
	}
	s.az.log = log
	return nil
}

func anchorTimeOf(a audit.Anchor) string {
	if a.Time == "" {
		return "time unknown"
	}
	return "of " + a.Time
}

// anchorEvery is how often a long-running Store moves keystore.json's
// anchor while it records; a variable for tests.
var anchorEvery = 10 * time.Second

// backgroundAnchor advances keystore.json's anchor from a Store that stays
// open (the rotation daemon, a service): at most once per anchorEvery, in
// a goroutine, never holding the audit log's lock, so the decision that
// triggers it does not wait for the keystore write.
type backgroundAnchor struct {
	s    *Store
	last atomic.Int64 // UnixNano of the last start
	busy atomic.Bool
	wg   sync.WaitGroup
}

func (b *backgroundAnchor) start(s *Store) {
	b.s = s
	b.last.Store(time.Now().UnixNano())
}

// maybe starts an advance if one is due; the caller holds a.mu for reading
// with a.log set.
func (b *backgroundAnchor) maybe(a *authzState) {
	now := time.Now().UnixNano()
	if now-b.last.Load() < int64(anchorEvery) || !b.busy.CompareAndSwap(false, true) {
		return
	}
	b.last.Store(now)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer b.busy.Store(false)
		a.mu.RLock()
		log, epoch := a.log, a.epoch
		a.mu.RUnlock()
		if log != nil { // a failure is retried at the next advance or at Close
			_ = b.s.advanceAuditAnchor(context.Background(), epoch, log.Anchor())
		}
	}()
}
