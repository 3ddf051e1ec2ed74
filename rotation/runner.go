package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keystack/keystack/keystore"
)

// ErrLeaseLost matches a store write refused because the writer was fenced
// off: several runners share a store and another took over the lease that
// allowed this one to write (the keystack binary's rotation daemons on
// PostgreSQL do). A keystore.Storage that fences its writes returns it. A
// pass that meets it stops at once, reports no failure for the key and
// runs no hooks.
var ErrLeaseLost = errors.New("rotation: the rotation lease was taken over by another daemon")

// ErrRotationFailed matches the error RunOnce returns when a due key could
// not be rotated, or a hook failed after an attempt. The wrapped cause
// matches too.
var ErrRotationFailed = errors.New("rotation: rotation failed")

// target is a key with a rotation policy, as the store holds it now.
type target struct {
	Name        string
	Policy      Policy
	Hooks       hooks
	LastRotated time.Time // zero when never rotated: due at once
	Version     int       // current primary version
	// Superseded are the decrypt-only versions other than the primary that
	// have a recorded time they stopped being primary, in version order.
	Superseded []superseded
}

// keyStore is what the rotation engine needs from a key store. Keys are
// rotated only through the lockedKeyStore that Lock returns, so an engine
// never rotates from state it read before taking the lock.
type keyStore interface {
	// RotationTargets lists the keys that have a rotation policy. It is
	// read without the lock, to plan a pass; it may be stale.
	RotationTargets(ctx context.Context) ([]target, error)
	// Lock takes the store's exclusive lock, shared with other processes,
	// waiting until it is free or ctx is done.
	Lock(ctx context.Context) (lockedKeyStore, error)
}

// lockedKeyStore is a keyStore held under its exclusive lock.
type lockedKeyStore interface {
	// RotationTargets is like keyStore.RotationTargets but read fresh,
	// under the lock: no other writer can change it until Unlock.
	RotationTargets(ctx context.Context) ([]target, error)
	// RotateKey makes a new primary version of key name, durably, before
	// returning it; reason is recorded in the key's history. It must not
	// take the lock again.
	RotateKey(ctx context.Context, name, reason string) (newVersion int, err error)
	// DisableVersion disables version v of key name, durably, recording
	// reason in its history; like RotateKey it must not take the lock again.
	DisableVersion(ctx context.Context, name string, v int, reason string) error
	// Unlock releases the lock. It is called exactly once.
	Unlock()
}

// Runner rotates the keys of a store that are due under their rotation
// settings (keystore.Store.SetRotationSettings): the keys whose
// keystore.RotationSettings have Every > 0 and not KMSAutomatic (which KMS
// rotates by itself). A key never rotated counts from its creation, so a
// new key is not rotated at once. Rotations hold the store's own write
// lock, so rotations by runners, the CLI and other processes never
// interleave. A key's success and failure hooks run its configured
// commands (no shell) and POST to its webhook.
//
// It also retires superseded versions: for a key whose settings have
// RetireAfter > 0 (with or without Every, KMSAutomatic included), each
// pass disables every decrypt-only version other than the primary that
// stopped being primary (its history's last "demote" or "unset-primary"
// event) more than RetireAfter ago, through keystore.Locked.DisableVersion:
// policy-checked as keystack:DisableKey, audited, with the reason
// "retired: superseded for more than RETIRE_AFTER (since T)" in its
// history. Retirement is reversible ("key version enable"); destruction
// stays a separate act. Enabled, disabled, pending and destroyed versions
// and the primary are left alone, so a retired version enabled again by
// hand stays enabled; made decrypt-only again, it is retired again at the
// next pass (its superseded time does not change). Hooks are told about
// rotations only.
//
// Store is required; the other fields are optional.
type Runner struct {
	Store *keystore.Store
	Now   func() time.Time // nil means time.Now
	Log   *slog.Logger     // nil discards logs

	keys keyStore // tests: a fake in place of Store
}

// Outcome is what a pass did with one key.
type Outcome string

// Outcomes in a RunReport.
const (
	OutcomeRotated Outcome = "rotated"
	OutcomeNotDue  Outcome = "not-due"
	OutcomeFailed  Outcome = "failed"
)

// KeyReport is one key's line in a RunReport. It never holds key material.
type KeyReport struct {
	Key        string    `json:"key"`
	Outcome    Outcome   `json:"outcome"`
	OldVersion int       `json:"old_version"`
	NewVersion int       `json:"new_version,omitempty"` // set when rotated
	Next       time.Time `json:"next"`                  // next due time; for a failure, when it was due
	Reason     string    `json:"reason,omitempty"`      // why it failed, or why its hook failed
	Err        error     `json:"-"`                     // the failure, for errors.Is
	HookErr    error     `json:"-"`                     // the hook's failure, if any
}

// RunReport is the result of one pass, keys in the store's order.
type RunReport struct {
	Started  time.Time   `json:"started"`
	Finished time.Time   `json:"finished"`
	Rotated  []KeyReport `json:"rotated"`
	NotDue   []KeyReport `json:"not_due"`
	Failed   []KeyReport `json:"failed"`
	// Retired lists the versions this pass retired (disabled);
	// RetireFailed those whose retirement was refused or failed.
	Retired      []RetireReport `json:"retired"`
	RetireFailed []RetireReport `json:"retire_failed"`
}

// RunOnce makes one pass over the store: every key that is due under its
// policy (see Due; the key name is the jitter seed) is rotated once, and its
// hooks are told the outcome: its settings' success or failure command, run
// with the outcome in KEYSTACK_* environment variables and nothing else of
// this process's environment but PATH, and its webhook, POSTed the outcome
// as JSON; a hook that fails or times out matches ErrHookFailed or
// ErrHookTimeout.
//
// It is idempotent and safe to run concurrently with itself, in this or
// another process: each due key is re-checked under the store's lock, against
// fresh state, before it is rotated, so two passes that both planned a
// rotation make it once. Hooks run after the lock is released.
//
// After a key's rotation step, its superseded versions due for retirement
// are retired (see Runner), re-checked under the lock in the same way.
//
// One key's failure does not stop the others. The error is non-nil when
// listing the keys failed, or when any key failed to rotate or its hook
// failed (then it matches ErrRotationFailed), or a retirement failed (then
// it matches ErrRetirementFailed), and each cause. The report is never nil
// and lists what was done.
func (r *Runner) RunOnce(ctx context.Context) (*RunReport, error) {
	rep := &RunReport{Started: r.now(), Rotated: []KeyReport{}, NotDue: []KeyReport{}, Failed: []KeyReport{},
		Retired: []RetireReport{}, RetireFailed: []RetireReport{}}
	err := r.pass(ctx, rep)
	rep.Finished = r.now()
	r.logger().LogAttrs(ctx, levelFor(err), "rotation pass finished",
		slog.Int("rotated", len(rep.Rotated)), slog.Int("not_due", len(rep.NotDue)),
		slog.Int("failed", len(rep.Failed)), slog.Int("retired", len(rep.Retired)),
		slog.Int("retire_failed", len(rep.RetireFailed)), slog.Duration("took", rep.Finished.Sub(rep.Started)),
		errAttr(err))
	return rep, err
}

func (r *Runner) pass(ctx context.Context, rep *RunReport) error {
	ks := r.keyStore()
	if ks == nil {
		return errors.New("rotation: Runner has no Store")
	}
	plan, err := ks.RotationTargets(ctx)
	if err != nil {
		return fmt.Errorf("rotation: list keys: %w", err)
	}
	var errs []error
	for _, t := range plan {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...) // stop between keys; nothing is half done
		}
		kerrs, stop := r.rotateStep(ctx, ks, rep, t)
		errs = append(errs, kerrs...)
		if stop {
			return errors.Join(errs...)
		}
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		kerrs, stop = rep.addRetired(r.retire(ctx, ks, t))
		errs = append(errs, kerrs...)
		if stop {
			return errors.Join(errs...)
		}
	}
	return errors.Join(errs...)
}

// rotateStep rotates planned key t if it is due and files the outcome in
// rep. A key without a rotation period (retirement only) is left out of the
// report. stop is true when the lease was lost: another daemon leads now,
// it rotates; this one stops.
func (r *Runner) rotateStep(ctx context.Context, ks keyStore, rep *RunReport, t target) (errs []error, stop bool) {
	if t.Policy.Every <= 0 {
		return nil, false
	}
	if due, next := Due(t.Policy, t.LastRotated, r.now(), t.Name); !due {
		rep.add(KeyReport{Key: t.Name, Outcome: OutcomeNotDue, OldVersion: t.Version, Next: next})
		return nil, false
	}
	kr, ok := r.rotate(ctx, ks, t)
	if errors.Is(kr.Err, ErrLeaseLost) {
		return []error{kr.Err}, true
	}
	if !ok {
		return nil, false // gone, or its policy was removed, since planning
	}
	rep.add(kr)
	if kr.Err != nil {
		errs = append(errs, fmt.Errorf("%w: key %q: %w", ErrRotationFailed, kr.Key, kr.Err))
	}
	if kr.HookErr != nil {
		errs = append(errs, fmt.Errorf("%w: key %q: hook: %w", ErrRotationFailed, kr.Key, kr.HookErr))
	}
	return errs, false
}

func (rep *RunReport) add(kr KeyReport) {
	switch kr.Outcome {
	case OutcomeRotated:
		rep.Rotated = append(rep.Rotated, kr)
	case OutcomeFailed:
		rep.Failed = append(rep.Failed, kr)
	default:
		rep.NotDue = append(rep.NotDue, kr)
	}
}

// rotate re-checks planned under the lock and rotates it if it is still
// due, then runs its hooks. ok is false when the key no longer has a
// policy, so there is nothing to report.
func (r *Runner) rotate(ctx context.Context, ks keyStore, planned target) (KeyReport, bool) {
	t, kr, ok := r.rotateLocked(ctx, ks, planned)
	if !ok || kr.Outcome == OutcomeNotDue || errors.Is(kr.Err, ErrLeaseLost) {
		return kr, ok // a lost lease is no failure of the key: no hooks
	}
	res := result{Key: t.Name, OldVersion: kr.OldVersion, NewVersion: kr.NewVersion, Time: r.now(), Err: kr.Err}
	if err := t.Hooks.notify(ctx, res); err != nil {
		kr.HookErr = err
		kr.Reason = joinReason(kr.Reason, "hook: "+err.Error())
	}
	r.logKey(ctx, kr)
	return kr, true
}

// rotateLocked holds the lock only for the state check and the rotation. It
// returns the fresh target, whose policy holds the hooks to run.
func (r *Runner) rotateLocked(ctx context.Context, ks keyStore, planned target) (target, KeyReport, bool) {
	failed := func(t target, next time.Time, err error) (target, KeyReport, bool) {
		return t, KeyReport{Key: t.Name, Outcome: OutcomeFailed, OldVersion: t.Version, Next: next,
			Reason: err.Error(), Err: err}, true
	}
	_, plannedAt := Due(planned.Policy, planned.LastRotated, r.now(), planned.Name)
	ls, err := ks.Lock(ctx)
	if err != nil {
		return failed(planned, plannedAt, fmt.Errorf("lock store: %w", err))
	}
	defer ls.Unlock()
	fresh, err := ls.RotationTargets(ctx)
	if err != nil {
		return failed(planned, plannedAt, fmt.Errorf("re-read keys under lock: %w", err))
	}
	t, found := findTarget(fresh, planned.Name)
	if !found {
		return t, KeyReport{}, false
	}
	due, at := Due(t.Policy, t.LastRotated, r.now(), t.Name)
	if !due {
		// Another pass rotated it, or its policy changed, since planning.
		return t, KeyReport{Key: t.Name, Outcome: OutcomeNotDue, OldVersion: t.Version, Next: at}, t.Policy.Every > 0
	}
	reason := fmt.Sprintf("scheduled rotation: policy every %v, due %s", t.Policy.Every, at.UTC().Format(time.RFC3339))
	nv, err := ls.RotateKey(ctx, t.Name, reason)
	if err != nil {
		return failed(t, at, err)
	}
	_, next := Due(t.Policy, r.now(), r.now(), t.Name)
	return t, KeyReport{Key: t.Name, Outcome: OutcomeRotated, OldVersion: t.Version, NewVersion: nv, Next: next}, true
}

func findTarget(ts []target, name string) (target, bool) {
	for _, t := range ts {
		if t.Name == name {
			return t, true
		}
	}
	return target{Name: name}, false
}

// keyStore is the store the runner rotates: Store's keys, or a test's fake.
func (r *Runner) keyStore() keyStore {
	switch {
	case r.keys != nil:
		return r.keys
	case r.Store != nil:
		return storeAdapter{r.Store}
	}
	return nil
}

func joinReason(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) logger() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (r *Runner) logKey(ctx context.Context, kr KeyReport) {
	attrs := []slog.Attr{slog.String("key", kr.Key), slog.String("outcome", string(kr.Outcome)),
		slog.Int("old_version", kr.OldVersion)}
	level := slog.LevelInfo
	if kr.Outcome == OutcomeRotated {
		attrs = append(attrs, slog.Int("new_version", kr.NewVersion), slog.Time("next", kr.Next))
	}
	if kr.Err != nil || kr.HookErr != nil {
		level = slog.LevelError
		attrs = append(attrs, slog.String("error", kr.Reason))
	}
	r.logger().LogAttrs(ctx, level, "key rotation", attrs...)
}

func levelFor(err error) slog.Level {
	if err != nil {
		return slog.LevelError
	}
	return slog.LevelInfo
}

func errAttr(err error) slog.Attr {
	if err == nil {
		return slog.Attr{}
	}
	return slog.String("error", err.Error())
}
