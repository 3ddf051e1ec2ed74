package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keystack/keystack/internal/testclock"
	"golang.org/x/sys/unix"
)

// fileStore is a keyStore kept in a directory, as a separate process would
// see it: key state in state.json (replaced atomically), and the lock a real
// flock(2) on a lock file, taken through a fresh file description each time
// so two fileStores, like two processes, exclude each other.
type fileStore struct {
	dir       string
	policy    Policy
	clock     *testclock.Clock
	onPlan    func()
	rotations atomic.Int32 // rotations made through this instance
}

type fileKey struct {
	Last    time.Time `json:"last"`
	Version int       `json:"version"`
}

func (s *fileStore) read() (map[string]fileKey, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, "state.json"))
	if err != nil {
		return nil, err
	}
	keys := map[string]fileKey{}
	return keys, json.Unmarshal(data, &keys)
}

func (s *fileStore) write(keys map[string]fileKey) error {
	data, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, "state-*.tmp")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(s.dir, "state.json"))
}

func (s *fileStore) targets() ([]target, error) {
	keys, err := s.read()
	if err != nil {
		return nil, err
	}
	var ts []target
	for name, k := range keys {
		ts = append(ts, target{Name: name, Policy: s.policy, LastRotated: k.Last, Version: k.Version})
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	return ts, nil
}

func (s *fileStore) RotationTargets(ctx context.Context) ([]target, error) {
	ts, err := s.targets()
	if s.onPlan != nil {
		s.onPlan()
	}
	return ts, err
}

func (s *fileStore) Lock(ctx context.Context) (lockedKeyStore, error) {
	f, err := os.OpenFile(filepath.Join(s.dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return &fileLocked{s: s, f: f}, nil
}

type fileLocked struct {
	s *fileStore
	f *os.File
}

func (l *fileLocked) RotationTargets(context.Context) ([]target, error) { return l.s.targets() }

func (l *fileLocked) RotateKey(ctx context.Context, name, reason string) (int, error) {
	keys, err := l.s.read()
	if err != nil {
		return 0, err
	}
	k, ok := keys[name]
	if !ok {
		return 0, fmt.Errorf("no key %q", name)
	}
	k.Version++
	k.Last = l.s.clock.Now()
	keys[name] = k
	if err := l.s.write(keys); err != nil {
		return 0, err
	}
	l.s.rotations.Add(1)
	return k.Version, nil
}

// DisableVersion is never called: this fake's targets have no superseded
// versions.
func (l *fileLocked) DisableVersion(context.Context, string, int, string) error {
	return errors.New("fileStore: no versions to disable")
}

func (l *fileLocked) Unlock() {
	_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	_ = l.f.Close()
}

func TestRunOnceConcurrentFileLock(t *testing.T) {
	dir := t.TempDir()
	c := newFakeClock()
	p := Policy{Every: day}
	const nKeys = 5
	initial := map[string]fileKey{}
	for i := range nKeys {
		initial[fmt.Sprintf("key-%d", i)] = fileKey{Last: runT0.Add(-2 * day), Version: 1}
	}
	barrier := planBarrier(2)
	stores := []*fileStore{
		{dir: dir, policy: p, clock: c, onPlan: barrier},
		{dir: dir, policy: p, clock: c, onPlan: barrier},
	}
	if err := stores[0].write(initial); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	reps := make([]*RunReport, len(stores))
	for i, s := range stores {
		wg.Go(func() {
			var err error
			if reps[i], err = (&Runner{keys: s, Now: c.Now}).RunOnce(context.Background()); err != nil {
				t.Errorf("runner %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if got := stores[0].rotations.Load() + stores[1].rotations.Load(); got != nKeys {
		t.Fatalf("two runners made %d rotations of %d due keys, want exactly %d", got, nKeys, nKeys)
	}
	if got := len(reps[0].Rotated) + len(reps[1].Rotated); got != nKeys {
		t.Errorf("reports list %d rotations, want %d", got, nKeys)
	}
	keys, err := stores[0].read()
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range keys {
		if k.Version != 2 || !k.Last.Equal(runT0) {
			t.Errorf("%s: version %d rotated at %v, want version 2 at %v", name, k.Version, k.Last, runT0)
		}
	}
}
