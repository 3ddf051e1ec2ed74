package gate

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keystack/keystack/internal/gatewire"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/policy"
)

// ResetAuditAnchor is the operator's way out after the audit log was found
// damaged (truncated, deleted, edited): it accepts that the records after
// the last intact point are lost. It needs the store's passphrase (not the
// policy, which cannot record anything while the log is damaged), sets the
// damaged log aside (AuditDestination.SetAside, "damaged"), and starts a
// new log whose first entry says who reset it, which anchor was abandoned
// and where the old log went. It returns that name ("" if there was no
// log). Other processes holding the old log keep writing into the
// set-aside file until they exit; stop them first.
func (g *Gate) ResetAuditAnchor(ctx context.Context) (string, error) {
	if err := g.owned(); err != nil {
		return "", err
	}
	if _, err := g.st.CheckPassphrase(ctx); err != nil { // the passphrase is the authority here
		return "", err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.log != nil {
		_ = g.log.Close() // its anchor is abandoned with it
		g.log = nil
	}
	var old gatewire.AuditAnchor
	var moved string
	err := g.st.UpdateConfig(ctx, func(c *gatewire.Config) error {
		if c.AuditAnchor != nil {
			// The anchor abandoned; its epoch is the latest, even when the
			// state was rolled back behind the destination's.
			old, _ = g.keptAnchor(*c.AuditAnchor)
		}
		var err error
		if moved, err = g.dest.SetAside(ctx, "damaged", g.now()); err != nil {
			return err
		}
		c.AuditAnchor = &gatewire.AuditAnchor{Epoch: old.Epoch + 1}
		return nil
	})
	if err != nil {
		return "", err
	}
	g.epoch = old.Epoch + 1
	g.detached.Store(false)
	return moved, g.startAfterReset(ctx, old, moved)
}

// startAfterReset writes the new log's first entry and anchors it; the
// caller holds g.mu.
func (g *Gate) startAfterReset(ctx context.Context, old gatewire.AuditAnchor, moved string) error {
	g.damaged = audit.ErrClosed
	log, err := g.dest.Open(ctx, g.options)
	if err != nil {
		return fmt.Errorf("keystore: audit log: %w", err)
	}
	if moved == "" {
		moved = "(none: it was missing)"
	}
	note := audit.Record{Type: audit.TypeNote, Principal: g.principal, Action: "keystack:ResetAuditAnchor", Resource: policy.ResourceAudit, Outcome: "ok",
		Reason: fmt.Sprintf("audit anchor reset with the passphrase, accepting loss: abandoned anchor entry %d (head %s, %s, epoch %d); previous log kept as %s",
			old.Seq, old.Head, anchorTimeOf(old.Anchor), old.Epoch, moved)}
	if err := log.Append(ctx, note); err != nil {
		_ = log.Close()
		return fmt.Errorf("keystore: audit log: %w", err)
	}
	cp, err := log.Checkpoint(ctx)
	if err == nil {
		err = g.advanceAnchor(ctx, g.epoch, cp)
	}
	if err != nil {
		_ = log.Close()
		return fmt.Errorf("keystore: audit anchor: %w", err)
	}
	g.log = log
	return nil
}

func anchorTimeOf(a audit.Anchor) string {
	if a.Time == "" {
		return "time unknown"
	}
	return "of " + a.Time
}

// anchorEvery is how often a long-running Gate moves the state's anchor
// while it records; a variable for tests.
var anchorEvery = 10 * time.Second

// backgroundAnchor advances the state's anchor from a Gate that stays open
// (the rotation daemon, a service): at most once per anchorEvery, in a
// goroutine, never holding the gate's lock, so the decision that triggers
// it does not wait for the state write.
type backgroundAnchor struct {
	g    *Gate
	last atomic.Int64 // UnixNano of the last start
	busy atomic.Bool
	wg   sync.WaitGroup
}

func (b *backgroundAnchor) start(g *Gate) {
	b.g = g
	b.last.Store(time.Now().UnixNano())
}

// maybe starts an advance if one is due; the caller holds g.mu for reading
// with g.log set.
func (b *backgroundAnchor) maybe(g *Gate) {
	now := time.Now().UnixNano()
	if now-b.last.Load() < int64(anchorEvery) || !b.busy.CompareAndSwap(false, true) {
		return
	}
	b.last.Store(now)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer b.busy.Store(false)
		g.mu.RLock()
		log, epoch := g.log, g.epoch
		g.mu.RUnlock()
		if log != nil { // a failure is retried at the next advance or at Close
			_ = b.g.advanceAnchor(context.Background(), epoch, log.Anchor())
		}
	}()
}

// Audit record of a failed unlock: passphrase guessing leaves a trace.
const (
	actionUnlock     = "keystack:Unlock"
	outcomeBadUnlock = "bad-passphrase"
	resourceKeystore = "keystore"
)

// RecordFailedUnlock records that the store's principal gave a wrong
// passphrase, failing closed like every record.
func (g *Gate) recordFailedUnlock(ctx context.Context) error {
	return g.recordOperation(ctx, audit.Record{Principal: g.principal, Action: actionUnlock, Resource: resourceKeystore, Outcome: outcomeBadUnlock})
}
