package rotation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keystack/keystack/internal/testclock"
)

// t0 is a fixed time for tests that take times as arguments.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// runT0 is the fake clock's start for runner and daemon tests.
var runT0 = time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

func newFakeClock() *testclock.Clock { return testclock.New(runT0) }

// memKey is one key of memStore.
type memKey struct {
	policy     Policy
	hooks      hooks
	last       time.Time
	version    int
	superseded []superseded   // decrypt-only versions: rotation adds the old primary
	disabled   map[int]string // retired versions and their reasons
}

// memStore is an in-memory keyStore whose lock is a real sync.Mutex. It
// counts rotations, fails RotateKey for keys in fail, and calls onPlan
// (when set) at the end of each unlocked RotationTargets.
type memStore struct {
	clock *testclock.Clock
	lock  sync.Mutex // the store's exclusive lock

	mu        sync.Mutex // guards the fields below
	names     []string
	keys      map[string]*memKey
	fail      map[string]error
	failRet   map[string]error // DisableVersion's error per key
	rotations map[string]int
	onPlan    func()
	onRotate  func(ctx context.Context, name string) // runs under the lock, before the rotation
}

var (
	_ keyStore       = (*memStore)(nil)
	_ lockedKeyStore = (*memLocked)(nil)
)

func newMemStore(c *testclock.Clock) *memStore {
	return &memStore{clock: c, keys: map[string]*memKey{}, fail: map[string]error{}, failRet: map[string]error{},
		rotations: map[string]int{}}
}

func (s *memStore) add(name string, p Policy, last time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names = append(s.names, name)
	s.keys[name] = &memKey{policy: p, last: last, version: 1, disabled: map[int]string{}}
}

// setHooks gives key name its hooks.
func (s *memStore) setHooks(name string, h hooks) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[name].hooks = h
}

func (s *memStore) targets() []target {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ts []target
	for _, n := range s.names {
		k := s.keys[n]
		if k.policy.Every > 0 || k.policy.RetireAfter > 0 {
			ts = append(ts, target{Name: n, Policy: k.policy, Hooks: k.hooks, LastRotated: k.last, Version: k.version,
				Superseded: slices.Clone(k.superseded)})
		}
	}
	return ts
}

func (s *memStore) RotationTargets(ctx context.Context) ([]target, error) {
	ts := s.targets()
	if s.onPlan != nil {
		s.onPlan()
	}
	return ts, ctx.Err()
}

func (s *memStore) Lock(ctx context.Context) (lockedKeyStore, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.lock.Lock()
	return &memLocked{s: s}, nil
}

func (s *memStore) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rotations[name]
}

type memLocked struct {
	s        *memStore
	unlocked bool
}

func (l *memLocked) RotationTargets(ctx context.Context) ([]target, error) {
	if l.unlocked {
		panic("memLocked used after Unlock")
	}
	return l.s.targets(), nil
}

func (l *memLocked) RotateKey(ctx context.Context, name, reason string) (int, error) {
	if l.unlocked {
		panic("memLocked used after Unlock")
	}
	if l.s.onRotate != nil {
		l.s.onRotate(ctx, name)
	}
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail[name]; err != nil {
		return 0, err
	}
	if reason == "" {
		return 0, errors.New("memStore: empty reason")
	}
	k := s.keys[name]
	k.superseded = append(k.superseded, superseded{Version: k.version, At: s.clock.Now()})
	k.version++
	k.last = s.clock.Now()
	s.rotations[name]++
	return k.version, nil
}

func (l *memLocked) DisableVersion(ctx context.Context, name string, v int, reason string) error {
	if l.unlocked {
		panic("memLocked used after Unlock")
	}
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failRet[name]; err != nil {
		return err
	}
	k := s.keys[name]
	i := slices.IndexFunc(k.superseded, func(sv superseded) bool { return sv.Version == v })
	if v == k.version || i < 0 {
		return fmt.Errorf("memStore: %q version %d is not superseded", name, v)
	}
	k.superseded = slices.Delete(k.superseded, i, i+1)
	k.disabled[v] = reason
	return nil
}

func (l *memLocked) Unlock() {
	if l.unlocked {
		panic("memLocked unlocked twice")
	}
	l.unlocked = true
	l.s.lock.Unlock()
}

// recordingHook records the results it is given and returns err.
type recordingHook struct {
	mu      sync.Mutex
	results []result
	err     error
}

func (h *recordingHook) Run(ctx context.Context, r result) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.results = append(h.results, r)
	return h.err
}

func (h *recordingHook) got() []result {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.results)
}

func keyNames(krs []KeyReport) []string {
	var names []string
	for _, kr := range krs {
		names = append(names, kr.Key)
	}
	return names
}

var errKMS = errors.New("kms: throttled")

func TestRunOnceDueAndNotDue(t *testing.T) {
	c := newFakeClock()
	s := newMemStore(c)
	p := Policy{Every: 30 * day}
	s.add("never", p, time.Time{})
	s.add("old", p, runT0.Add(-31*day))
	s.add("fresh", p, runT0.Add(-day))
	s.add("manual", Policy{}, time.Time{}) // no schedule: not a target
	r := &Runner{keys: s, Now: c.Now}
	rep, err := r.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	if got := keyNames(rep.Rotated); !slices.Equal(got, []string{"never", "old"}) {
		t.Errorf("rotated %v, want [never old]", got)
	}
	if got := keyNames(rep.NotDue); !slices.Equal(got, []string{"fresh"}) {
		t.Errorf("not due %v, want [fresh]", got)
	}
	if len(rep.Failed) != 0 {
		t.Errorf("failed %v, want none", rep.Failed)
	}
	if want := runT0.Add(29 * day); !rep.NotDue[0].Next.Equal(want) {
		t.Errorf("fresh next due %v, want %v", rep.NotDue[0].Next, want)
	}
	for _, kr := range rep.Rotated {
		if kr.OldVersion != 1 || kr.NewVersion != 2 || !kr.Next.Equal(runT0.Add(30*day)) {
			t.Errorf("rotated %+v, want 1 -> 2, next %v", kr, runT0.Add(30*day))
		}
	}
	for name, want := range map[string]int{"never": 1, "old": 1, "fresh": 0, "manual": 0} {
		if got := s.count(name); got != want {
			t.Errorf("%s rotated %d times, want %d", name, got, want)
		}
	}
}

func TestRunOnceJitterUsesKeyName(t *testing.T) {
	c := newFakeClock()
	s := newMemStore(c)
	p := Policy{Every: 10 * day, Jitter: 5 * day}
	s.add("k", p, runT0.Add(-10*day))
	_, at := Due(p, runT0.Add(-10*day), runT0, "k")
	if !at.After(runT0) {
		t.Fatal("fixture: the jitter of key \"k\" is zero, so this test would prove nothing; pick another name")
	}
	rep, err := (&Runner{keys: s, Now: c.Now}).RunOnce(context.Background())
	if err != nil || len(rep.Rotated) != 0 || !rep.NotDue[0].Next.Equal(at) {
		t.Fatalf("before its jittered time: report %+v, err %v; want not due until %v", rep, err, at)
	}
	c.Advance(at.Sub(runT0))
	rep, err = (&Runner{keys: s, Now: c.Now}).RunOnce(context.Background())
	if err != nil || len(rep.Rotated) != 1 {
		t.Fatalf("at its jittered time: report %+v, err %v; want rotated", rep, err)
	}
}

func TestRunOnceHooks(t *testing.T) {
	c := newFakeClock()
	s := newMemStore(c)
	onOK, onFail := &recordingHook{}, &recordingHook{}
	p := Policy{Every: day}
	s.add("good", p, time.Time{})
	s.add("bad", p, time.Time{})
	s.add("later", p, runT0)
	for _, name := range []string{"good", "bad", "later"} {
		s.setHooks(name, hooks{OnSuccess: onOK, OnFailure: onFail})
	}
	s.fail["bad"] = errKMS
	_, err := (&Runner{keys: s, Now: c.Now}).RunOnce(context.Background())
	if !errors.Is(err, ErrRotationFailed) || !errors.Is(err, errKMS) {
		t.Fatalf("RunOnce error %v, want ErrRotationFailed wrapping %v", err, errKMS)
	}
	ok, fail := onOK.got(), onFail.got()
	if len(ok) != 1 || ok[0].Key != "good" || ok[0].OldVersion != 1 || ok[0].NewVersion != 2 ||
		ok[0].Err != nil || !ok[0].Time.Equal(runT0) {
		t.Errorf("success hook saw %+v, want one success for good 1 -> 2 at %v", ok, runT0)
	}
	if len(fail) != 1 || fail[0].Key != "bad" || fail[0].NewVersion != 0 || !errors.Is(fail[0].Err, errKMS) {
		t.Errorf("failure hook saw %+v, want one failure for bad wrapping %v", fail, errKMS)
	}
}

func TestRunOnceHookFailure(t *testing.T) {
	c := newFakeClock()
	s := newMemStore(c)
	hookErr := errors.New("webhook answered 503")
	s.add("k", Policy{Every: day}, time.Time{})
	s.setHooks("k", hooks{OnSuccess: &recordingHook{err: hookErr}})
	rep, err := (&Runner{keys: s, Now: c.Now}).RunOnce(context.Background())
	if !errors.Is(err, ErrRotationFailed) || !errors.Is(err, hookErr) {
		t.Fatalf("RunOnce error %v, want ErrRotationFailed wrapping the hook's error", err)
	}
	// The rotation itself happened and is reported as such.
	if s.count("k") != 1 || len(rep.Rotated) != 1 || !errors.Is(rep.Rotated[0].HookErr, hookErr) {
		t.Fatalf("report %+v, count %d; want k rotated once with its hook error", rep, s.count("k"))
	}
}

func TestRunOnceFailureDoesNotStopOthers(t *testing.T) {
	c := newFakeClock()
	s := newMemStore(c)
	for _, n := range []string{"a", "b", "c"} {
		s.add(n, Policy{Every: day}, time.Time{})
	}
	s.fail["b"] = errKMS
	rep, err := (&Runner{keys: s, Now: c.Now}).RunOnce(context.Background())
	if !errors.Is(err, ErrRotationFailed) || !errors.Is(err, errKMS) {
		t.Fatalf("RunOnce error %v, want ErrRotationFailed wrapping %v", err, errKMS)
	}
	if got := keyNames(rep.Rotated); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("rotated %v, want [a c]", got)
	}
	if len(rep.Failed) != 1 || rep.Failed[0].Key != "b" || rep.Failed[0].Reason != errKMS.Error() ||
		!rep.Failed[0].Next.Equal(runT0) {
		t.Errorf("failed %+v, want b with reason %q, due %v", rep.Failed, errKMS, runT0)
	}
	// Fixed, the next pass rotates b only.
	delete(s.fail, "b")
	rep, err = (&Runner{keys: s, Now: c.Now}).RunOnce(context.Background())
	if err != nil || !slices.Equal(keyNames(rep.Rotated), []string{"b"}) {
		t.Fatalf("retry: rotated %v, err %v; want [b], nil", keyNames(rep.Rotated), err)
	}
}

func TestRunOnceBackToBack(t *testing.T) {
	c := newFakeClock()
	s := newMemStore(c)
	s.add("k", Policy{Every: day}, runT0.Add(-2*day))
	r := &Runner{keys: s, Now: c.Now}
	for i := range 3 {
		if _, err := r.RunOnce(context.Background()); err != nil {
			t.Fatalf("pass %d: %v", i, err)
		}
	}
	if n := s.count("k"); n != 1 {
		t.Fatalf("three passes at one time rotated k %d times, want 1", n)
	}
	c.Advance(day)
	if _, err := r.RunOnce(context.Background()); err != nil || s.count("k") != 2 {
		t.Fatalf("a period later: count %d, err %v; want 2, nil", s.count("k"), err)
	}
}

// planBarrier returns an onPlan func that holds each caller until n have
// planned, so n concurrent passes all see the same keys as due.
func planBarrier(n int) func() {
	var wg sync.WaitGroup
	wg.Add(n)
	return func() { wg.Done(); wg.Wait() }
}

func TestRunOnceConcurrentRotatesOnce(t *testing.T) {
	c := newFakeClock()
	s := newMemStore(c)
	s.add("k", Policy{Every: day}, time.Time{})
	hook := &recordingHook{}
	s.setHooks("k", hooks{OnSuccess: hook})
	const n = 4
	s.onPlan = planBarrier(n)
	reps := make([]*RunReport, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var err error
			if reps[i], err = (&Runner{keys: s, Now: c.Now}).RunOnce(context.Background()); err != nil {
				t.Errorf("runner %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if got := s.count("k"); got != 1 {
		t.Fatalf("%d concurrent passes rotated k %d times, want 1", n, got)
	}
	rotated, notDue := 0, 0
	for _, rep := range reps {
		rotated += len(rep.Rotated)
		notDue += len(rep.NotDue)
	}
	if rotated != 1 || notDue != n-1 || len(hook.got()) != 1 {
		t.Fatalf("reports: %d rotated, %d not due, %d hook calls; want 1, %d, 1", rotated, notDue, len(hook.got()), n-1)
	}
}

func TestRunOnceListError(t *testing.T) {
	c := newFakeClock()
	s := &failingList{err: errors.New("keystore.json: permission denied")}
	rep, err := (&Runner{keys: s, Now: c.Now}).RunOnce(context.Background())
	if !errors.Is(err, s.err) || rep == nil || len(rep.Rotated)+len(rep.NotDue)+len(rep.Failed) != 0 {
		t.Fatalf("report %+v, err %v; want an empty report and the list error", rep, err)
	}
}

type failingList struct{ err error }

func (f *failingList) RotationTargets(context.Context) ([]target, error) { return nil, f.err }
func (f *failingList) Lock(context.Context) (lockedKeyStore, error)      { return nil, f.err }

func TestRunOnceCancelled(t *testing.T) {
	c := newFakeClock()
	s := newMemStore(c)
	s.add("a", Policy{Every: day}, time.Time{})
	s.add("b", Policy{Every: day}, time.Time{})
	ctx, cancel := context.WithCancel(context.Background())
	// Cancel while a is rotating: a completes, b is never started.
	s.onRotate = func(context.Context, string) { cancel() }
	rep, err := (&Runner{keys: s, Now: c.Now}).RunOnce(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("RunOnce error %v, want context.Canceled", err)
	}
	if s.count("a") != 1 || s.count("b") != 0 || len(rep.Rotated) != 1 {
		t.Fatalf("counts a=%d b=%d, report %+v; want a rotated, b untouched", s.count("a"), s.count("b"), rep)
	}
}

func TestRunOnceNoStore(t *testing.T) {
	if _, err := (&Runner{}).RunOnce(context.Background()); err == nil {
		t.Fatal("RunOnce without a Store succeeded")
	}
}

// TestRunOnceLogsJSON: with a JSON handler (`rotate --log-format json`),
// each key's line says its outcome, at INFO when it rotated and at ERROR
// with the store's error when it failed.
func TestRunOnceLogsJSON(t *testing.T) {
	c := newFakeClock()
	s := newMemStore(c)
	s.add("payments", Policy{Every: day}, time.Time{})
	s.add("broken", Policy{Every: day}, time.Time{})
	s.fail["broken"] = errKMS
	var buf bytes.Buffer
	r := &Runner{keys: s, Now: c.Now, Log: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	if _, err := r.RunOnce(context.Background()); err == nil {
		t.Fatal("RunOnce with a failing key succeeded")
	}
	seen := map[string]map[string]any{}
	for line := range strings.Lines(buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if key, ok := rec["key"].(string); ok {
			seen[key] = rec
		}
	}
	if rec := seen["payments"]; rec["outcome"] != "rotated" || rec["new_version"] != 2.0 || rec["level"] != "INFO" {
		t.Errorf("payments log %v, want rotated to version 2 at INFO", rec)
	}
	if rec := seen["broken"]; rec["outcome"] != "failed" || rec["error"] != errKMS.Error() || rec["level"] != "ERROR" {
		t.Errorf("broken log %v, want failed with the store's error at ERROR", rec)
	}
}

// BenchmarkRunOncePlanning measures a pass over a store of many scheduled
// keys that are not due: the daemon's common case on each tick.
func BenchmarkRunOncePlanning(b *testing.B) {
	c := newFakeClock()
	s := newMemStore(c)
	for i := range 1000 {
		s.add(fmt.Sprintf("key-%04d", i), Policy{Every: 30 * day, Jitter: day}, runT0)
	}
	r := &Runner{keys: s, Now: c.Now}
	for b.Loop() {
		rep, err := r.RunOnce(context.Background())
		if err != nil || len(rep.NotDue) != 1000 {
			b.Fatalf("report %d not due, err %v", len(rep.NotDue), err)
		}
	}
}

// BenchmarkRunOnceRotate measures rotating a due key, lock and state check
// included, against an in-memory store.
func BenchmarkRunOnceRotate(b *testing.B) {
	c := newFakeClock()
	s := newMemStore(c)
	s.add("k", Policy{Every: time.Nanosecond}, time.Time{})
	r := &Runner{keys: s, Now: c.Now}
	for b.Loop() {
		c.Advance(time.Second)
		if rep, err := r.RunOnce(context.Background()); err != nil || len(rep.Rotated) != 1 {
			b.Fatalf("report %+v, err %v", rep, err)
		}
	}
}
