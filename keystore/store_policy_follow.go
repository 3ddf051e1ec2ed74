package keystore

import (
	"os"
	"path/filepath"
	"sync"
	"time"
)

// policyRecheck is how often a Store looks for a policy.json that another
// process (keystack policy put, an administrator) has replaced: a
// long-running store, such as the rotation daemon's, follows a changed
// policy within this time without a restart.
const policyRecheck = time.Second

// policyStamp identifies one version of policy.json: PutPolicy replaces
// the file by rename, so a new version is a new file (os.SameFile), and
// an edit in place changes its size or modification time.
type policyStamp struct{ fi os.FileInfo }

func (a policyStamp) same(b policyStamp) bool {
	if a.fi == nil || b.fi == nil {
		return a.fi == nil && b.fi == nil
	}
	return os.SameFile(a.fi, b.fi) && a.fi.Size() == b.fi.Size() && a.fi.ModTime().Equal(b.fi.ModTime())
}

// policyFollower re-reads policy.json when its stamp changes, checking at
// most once per policyRecheck.
type policyFollower struct {
	mu    sync.Mutex
	next  time.Time
	stamp policyStamp
}

func statPolicy(path string) policyStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return policyStamp{}
	}
	return policyStamp{fi}
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
	path := filepath.Join(s.dir, policyFile)
	st := statPolicy(path)
	if st.same(a.follow.stamp) {
		return
	}
	f, err := s.load()
	if err != nil {
		return
	}
	p, err := s.readPolicy(f)
	if err != nil {
		return
	}
	a.engine.SetPolicy(p)
	a.follow.stamp = st
}
