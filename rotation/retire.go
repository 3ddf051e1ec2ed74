package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ErrRetirementFailed matches the error RunOnce returns when a superseded
// key version due for retirement could not be disabled: the store refused
// it (a policy denial matches policy.ErrAccessDenied too) or failed to
// write it. The wrapped cause matches too.
var ErrRetirementFailed = errors.New("rotation: retirement failed")

// superseded is a decrypt-only version other than the primary, with the
// time it stopped being primary.
type superseded struct {
	Version int
	At      time.Time
}

// RetireReport is one key version's line in a RunReport's Retired or
// RetireFailed list. It never holds key material.
type RetireReport struct {
	Key        string    `json:"key"`
	Version    int       `json:"version"`
	Superseded time.Time `json:"superseded"`       // when it stopped being primary
	Due        time.Time `json:"due"`              // Superseded + RetireAfter
	Reason     string    `json:"reason,omitempty"` // why the retirement failed
	Err        error     `json:"-"`                // the failure, for errors.Is
}

// retireReason is the reason recorded in a retired version's history.
func retireReason(p Policy, sv superseded) string {
	return fmt.Sprintf("retired: superseded for more than %v (since %s)", p.RetireAfter, sv.At.UTC().Format(time.RFC3339))
}

// anyRetireDue reports whether t has a superseded version due for
// retirement at now.
func anyRetireDue(t target, now time.Time) bool {
	for _, sv := range t.Superseded {
		if due, _ := retireDue(t.Policy, sv.At, now); due {
			return true
		}
	}
	return false
}

// retire disables, under the store's lock and against fresh state, every
// superseded version of planned's key that is due for retirement. Versions
// in any other state than decrypt-only, and the primary, are never listed
// in a target's Superseded, so they are left alone. It returns one report
// per version it tried, and stops at a lost lease; when the key's versions
// could not be read under the lock, one failed report with Version 0.
func (r *Runner) retire(ctx context.Context, ks keyStore, planned target) []RetireReport {
	if planned.Policy.RetireAfter <= 0 || !anyRetireDue(planned, r.now()) {
		return nil
	}
	failed := func(err error) []RetireReport {
		return []RetireReport{{Key: planned.Name, Reason: err.Error(), Err: err}}
	}
	ls, err := ks.Lock(ctx)
	if err != nil {
		return failed(fmt.Errorf("lock store: %w", err))
	}
	defer ls.Unlock()
	fresh, err := ls.RotationTargets(ctx)
	if err != nil {
		return failed(fmt.Errorf("re-read keys under lock: %w", err))
	}
	t, found := findTarget(fresh, planned.Name)
	if !found || t.Policy.RetireAfter <= 0 {
		return nil // gone, or its retirement was switched off, since planning
	}
	var out []RetireReport
	for _, sv := range t.Superseded {
		due, at := retireDue(t.Policy, sv.At, r.now())
		if !due {
			continue
		}
		rr := RetireReport{Key: t.Name, Version: sv.Version, Superseded: sv.At, Due: at}
		if err := ls.DisableVersion(ctx, t.Name, sv.Version, retireReason(t.Policy, sv)); err != nil {
			rr.Reason, rr.Err = err.Error(), err
		}
		r.logRetire(ctx, rr)
		out = append(out, rr)
		if errors.Is(rr.Err, ErrLeaseLost) || ctx.Err() != nil {
			break
		}
	}
	return out
}

// addRetired files rrs in rep and returns the errors of the failed ones,
// each matching ErrRetirementFailed, and whether the lease was lost.
func (rep *RunReport) addRetired(rrs []RetireReport) (errs []error, leaseLost bool) {
	for _, rr := range rrs {
		if errors.Is(rr.Err, ErrLeaseLost) {
			return append(errs, rr.Err), true // another daemon leads: no failure of the key
		}
		if rr.Err == nil {
			rep.Retired = append(rep.Retired, rr)
			continue
		}
		rep.RetireFailed = append(rep.RetireFailed, rr)
		errs = append(errs, fmt.Errorf("%w: key %q version %d: %w", ErrRetirementFailed, rr.Key, rr.Version, rr.Err))
	}
	return errs, false
}

func (r *Runner) logRetire(ctx context.Context, rr RetireReport) {
	attrs := []slog.Attr{slog.String("key", rr.Key), slog.Int("version", rr.Version),
		slog.Time("superseded", rr.Superseded), slog.Time("due", rr.Due)}
	level, msg := slog.LevelInfo, "key version retired"
	if rr.Err != nil {
		level, msg = slog.LevelError, "key version retirement failed"
		attrs = append(attrs, slog.String("error", rr.Reason))
	}
	r.logger().LogAttrs(ctx, level, msg, attrs...)
}

// retireDue reports whether a key version superseded at supersededAt should
// be retired at now under p.RetireAfter, and when. With RetireAfter == 0 it
// never is due and returns the zero time.
func retireDue(p Policy, supersededAt, now time.Time) (bool, time.Time) {
	if p.RetireAfter <= 0 || supersededAt.IsZero() {
		return false, time.Time{}
	}
	at := supersededAt.Add(p.RetireAfter)
	return !now.Before(at), at
}
