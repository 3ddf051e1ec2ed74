package gate

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keystack/keystack/internal/policyengine"
)

// policyRecheck is how often a Gate looks for a policy document that
// another process (keystack policy put, an administrator) has replaced,
// and for a changed state (principals, groups, tags): a long-running
// store, such as the rotation daemon's, follows them within this time
// without a restart. With replicas on PostgreSQL a change reaches every
// replica within this plus the storage's notification delay (its poll,
// at worst), well within the 1 s the README promises; a check costs a
// stat, or nothing on PostgreSQL (revisions cached).
const policyRecheck = 250 * time.Millisecond

// policyFollower rereads the policy document and the state's principals
// when their revisions change, checking at most once per policyRecheck.
// The revisions start at those of the documents the Gate was opened from,
// so no change made after that is missed.
type policyFollower struct {
	mu        sync.Mutex
	next      time.Time
	policyRev string
	stateRev  string
}

// liveDirectory is the policy's view of the principals section, replaced
// whole when the state changes.
type liveDirectory struct {
	d atomic.Pointer[policyengine.StaticDirectory]
}

func (l *liveDirectory) set(d policyengine.StaticDirectory) { l.d.Store(&d) }

// Lookup implements policyengine.Directory.
func (l *liveDirectory) Lookup(principal string) ([]string, map[string]string) {
	if d := l.d.Load(); d != nil {
		return d.Lookup(principal)
	}
	return nil, nil
}

// followPolicy puts a replaced policy document in force before a
// decision. A policy document that does not read or parse leaves the last
// good policy in force and is tried again at the next check; `keystack
// policy put` validates before writing, so only a hand edit can cause
// that.
func (g *Gate) followPolicy() {
	if g.engine == nil || !g.follow.mu.TryLock() { // another goroutine is checking
		return
	}
	defer g.follow.mu.Unlock()
	now := g.now()
	if now.Before(g.follow.next) {
		return
	}
	g.follow.next = now.Add(policyRecheck)
	ctx := context.Background()
	prev, err := g.st.PolicyRevision(ctx)
	if err != nil {
		return
	}
	meta := g.st.ConfigRevision(ctx)
	if prev == g.follow.policyRev && meta == g.follow.stateRev {
		return
	}
	c, rev, err := g.st.Config(ctx)
	if err != nil {
		return
	}
	if rev != g.follow.stateRev {
		g.directory.set(directory(c))
		g.follow.stateRev = rev
	}
	if prev == g.follow.policyRev {
		return
	}
	p, prev, err := g.readPolicy(ctx, c)
	if err != nil {
		return
	}
	g.engine.SetPolicy(p)
	g.follow.policyRev = prev
}
