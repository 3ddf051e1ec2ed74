package keystore

import (
	"os"
	"path/filepath"
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

// fileStamp identifies one version of a file: PutPolicy and the store's
// updates replace files by rename, so a new version is a new file
// (os.SameFile), and an edit in place changes its size or modification
// time.
type fileStamp struct{ fi os.FileInfo }

func (a fileStamp) same(b fileStamp) bool {
	if a.fi == nil || b.fi == nil {
		return a.fi == nil && b.fi == nil
	}
	return os.SameFile(a.fi, b.fi) && a.fi.Size() == b.fi.Size() && a.fi.ModTime().Equal(b.fi.ModTime())
}

// policyFollower re-reads policy.json and keystore.json's principals when
// their stamps change, checking at most once per policyRecheck. The stamps
// start empty, so the first check reads both files once more: simpler than
// stamping them at open, and it cannot miss a change made in between.
type policyFollower struct {
	mu        sync.Mutex
	next      time.Time
	stamp     fileStamp // of policy.json
	metaStamp fileStamp // of keystore.json
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

func statFile(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi}
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
	st := statFile(filepath.Join(s.dir, policyFile))
	meta := statFile(filepath.Join(s.dir, metaFile))
	if st.same(a.follow.stamp) && meta.same(a.follow.metaStamp) {
		return
	}
	f, err := s.load()
	if err != nil {
		return
	}
	if !meta.same(a.follow.metaStamp) {
		a.directory.set(directory(f))
		a.follow.metaStamp = meta
	}
	if st.same(a.follow.stamp) {
		return
	}
	p, err := s.readPolicy(f)
	if err != nil {
		return
	}
	a.engine.SetPolicy(p)
	a.follow.stamp = st
}
