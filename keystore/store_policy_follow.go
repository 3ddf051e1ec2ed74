package keystore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keystack/keystack/policy"
)

// policyRecheck is how often a Store looks for a policy.json that another
// process (keystack policy put, an administrator) has replaced, and for a
// changed keystore.json (principals, groups, tags): a long-running store,
// such as the rotation daemon's, follows them within this time without a
// restart.
const policyRecheck = time.Second

// policyFollower rereads the policy document and the state's principals
// when their revisions change, checking at most once per policyRecheck.
// The revisions start at those of the documents the Store was opened
// from, so no change made after that is missed.
type policyFollower struct {
	mu        sync.Mutex
	next      time.Time
	policyRev Revision
	stateRev  Revision
}

// liveDirectory is the policy's view of keystore.json's principals
// section, replaced whole when the file changes.
type liveDirectory struct {
	d atomic.Pointer[policy.StaticDirectory]
}

func (l *liveDirectory) set(d policy.StaticDirectory) { l.d.Store(&d) }

// Lookup implements policy.Directory.
func (l *liveDirectory) Lookup(principal string) ([]string, map[string]string) {
	if d := l.d.Load(); d != nil {
		return d.Lookup(principal)
	}
	return nil, nil
}

// followPolicy puts a replaced policy.json in force before a decision. A
// policy file that does not read or parse leaves the last good policy in
// force and is tried again at the next check; `keystack policy put`
// validates before writing, so only a hand edit can cause that.
func (s *Store) followPolicy() {
	a := s.az
	if a == nil || !a.follow.mu.TryLock() { // another goroutine is checking
		return
	}
	defer a.follow.mu.Unlock()
	now := s.now()
	if now.Before(a.follow.next) {
		return
	}
	a.follow.next = now.Add(policyRecheck)
	ctx := context.Background()
	prev, err := s.st.Revision(ctx, PolicyDocument)
	if err != nil {
		return
	}
	meta := s.stateRevision()
	if prev == a.follow.policyRev && meta == a.follow.stateRev {
		return
	}
	f, rev, err := s.loadRev(ctx)
	if err != nil {
		return
	}
	if rev != a.follow.stateRev {
		a.directory.set(directory(f))
		a.follow.stateRev = rev
	}
	if prev == a.follow.policyRev {
		return
	}
	p, prev, err := s.readPolicy(ctx, f)
	if err != nil {
		return
	}
	a.engine.SetPolicy(p)
	a.follow.policyRev = prev
}
