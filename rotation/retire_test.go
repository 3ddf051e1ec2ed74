package rotation

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keystack/keystack/keystore"
)

func versionsOf(rrs []RetireReport) []int {
	var vs []int
	for _, rr := range rrs {
		vs = append(vs, rr.Version)
	}
	return vs
}

// TestRunOnceRetiresSuperseded: a superseded version is retired exactly
// when RetireAfter has passed since it stopped being primary, never before,
// once, and the primary never.
func TestRunOnceRetiresSuperseded(t *testing.T) {
	ctx := context.Background()
	c := newFakeClock()
	s := newMemStore(c)
	s.add("k", Policy{Every: 30 * day, RetireAfter: 10 * day}, runT0)
	r := &Runner{keys: s, Now: c.Now}

	c.Advance(30 * day) // v1 -> v2; v1 superseded now
	supersededAt := c.Now()
	rep, err := r.RunOnce(ctx)
	if err != nil || len(rep.Rotated) != 1 || len(rep.Retired) != 0 {
		t.Fatalf("rotation pass: %+v, %v", rep, err)
	}
	c.Advance(10*day - time.Nanosecond)
	if rep, err := r.RunOnce(ctx); err != nil || len(rep.Retired) != 0 || len(s.keys["k"].disabled) != 0 {
		t.Fatalf("retired before its time: %+v, %v", rep, err)
	}
	c.Advance(time.Nanosecond)
	rep, err = r.RunOnce(ctx)
	if err != nil || len(rep.RetireFailed) != 0 || !slices.Equal(versionsOf(rep.Retired), []int{1}) {
		t.Fatalf("due pass: %+v, %v; want v1 retired", rep, err)
	}
	rr := rep.Retired[0]
	if rr.Key != "k" || !rr.Superseded.Equal(supersededAt) || !rr.Due.Equal(supersededAt.Add(10*day)) || rr.Err != nil {
		t.Fatalf("report line %+v", rr)
	}
	want := "retired: superseded for more than 240h0m0s (since " + supersededAt.Format(time.RFC3339) + ")"
	if got := s.keys["k"].disabled[1]; got != want {
		t.Fatalf("reason %q, want %q", got, want)
	}
	// Idempotent, and the primary (v2) is never retired, however old.
	c.Advance(25 * day)
	rep, err = r.RunOnce(ctx)
	if err != nil || len(rep.Rotated) != 1 || len(rep.Retired) != 0 {
		t.Fatalf("later pass: %+v, %v; want a rotation, no retirement", rep, err)
	}
	if _, gone := s.keys["k"].disabled[2]; gone {
		t.Fatal("the primary of the time was retired")
	}
}

// TestRunOnceRetireOnly: a key with RetireAfter and no period is retired
// from but never rotated, and not listed as not due.
func TestRunOnceRetireOnly(t *testing.T) {
	c := newFakeClock()
	s := newMemStore(c)
	s.add("k", Policy{RetireAfter: day}, runT0)
	s.keys["k"].superseded = []superseded{{Version: 1, At: runT0.Add(-2 * day)}, {Version: 2, At: runT0}}
	s.keys["k"].version = 3
	rep, err := (&Runner{keys: s, Now: c.Now}).RunOnce(context.Background())
	if err != nil || len(rep.Rotated)+len(rep.NotDue)+len(rep.Failed) != 0 || !slices.Equal(versionsOf(rep.Retired), []int{1}) {
		t.Fatalf("report %+v, %v; want v1 retired only", rep, err)
	}
	if s.count("k") != 0 || s.keys["k"].version != 3 {
		t.Fatal("a key without a period was rotated")
	}
}

// TestRunOnceRetireFailure: a refused retirement fails the pass with
// ErrRetirementFailed and its cause, is listed, and does not stop other keys.
func TestRunOnceRetireFailure(t *testing.T) {
	c := newFakeClock()
	s := newMemStore(c)
	denied := errors.New("policy: access denied")
	for _, n := range []string{"a", "b"} {
		s.add(n, Policy{RetireAfter: day}, runT0)
		s.keys[n].superseded = []superseded{{Version: 1, At: runT0.Add(-2 * day)}}
		s.keys[n].version = 2
	}
	s.failRet["a"] = denied
	rep, err := (&Runner{keys: s, Now: c.Now}).RunOnce(context.Background())
	if !errors.Is(err, ErrRetirementFailed) || !errors.Is(err, denied) || errors.Is(err, ErrRotationFailed) {
		t.Fatalf("error %v, want ErrRetirementFailed wrapping the denial", err)
	}
	if len(rep.RetireFailed) != 1 || rep.RetireFailed[0].Key != "a" || rep.RetireFailed[0].Version != 1 ||
		rep.RetireFailed[0].Reason != denied.Error() || len(rep.Retired) != 1 || rep.Retired[0].Key != "b" {
		t.Fatalf("report %+v", rep)
	}
	// A lost lease stops the pass and is no failure of the key.
	s.failRet["a"] = ErrLeaseLost
	rep, err = (&Runner{keys: s, Now: c.Now}).RunOnce(context.Background())
	if !errors.Is(err, ErrLeaseLost) || errors.Is(err, ErrRetirementFailed) || len(rep.RetireFailed)+len(rep.Retired) != 0 {
		t.Fatalf("lease lost: %+v, %v", rep, err)
	}
}

// TestStoreAdapterRetires runs retirement over a real store: only
// decrypt-only versions superseded long enough are disabled, with the
// reason in their history; a version enabled again by hand stays enabled,
// one made decrypt-only again is retired again.
func TestStoreAdapterRetires(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	st := newAdapterStore(t, clk)
	createWith(t, st, "k", nil)
	rotate := func() {
		t.Helper()
		if _, err := st.RotateKey(ctx, "k", "by hand"); err != nil {
			t.Fatal(err)
		}
	}
	rotate() // v1 superseded at t0
	clk.Advance(day)
	rotate() // v2 superseded at t0+1d
	clk.Advance(day)
	rotate() // v3 superseded at t0+2d; v4 primary
	if _, err := st.DisableVersion(ctx, "k", 3, "by hand"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetRotationSettings(ctx, "k", &keystore.RotationSettings{RetireAfter: 36 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	r := &Runner{Store: st, Now: clk.Now}
	states := func() []keystore.VersionState {
		t.Helper()
		ki, err := st.DescribeKey(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		var out []keystore.VersionState
		for _, v := range ki.Versions {
			out = append(out, v.State)
		}
		return out
	}
	rep, err := r.RunOnce(ctx) // t0+2d: v1 due (t0+36h), v2 not (t0+60h)
	if err != nil || !slices.Equal(versionsOf(rep.Retired), []int{1}) {
		t.Fatalf("pass: %+v, %v; want v1 retired", rep, err)
	}
	dis, dec, en := keystore.StateDisabled, keystore.StateDecryptOnly, keystore.StateEnabled
	if got := states(); !slices.Equal(got, []keystore.VersionState{dis, dec, dis, en}) {
		t.Fatalf("states %v", got)
	}
	ki, _ := st.DescribeKey(ctx, "k")
	last := ki.Versions[0].History[len(ki.Versions[0].History)-1]
	if last.Action != "disable" || !strings.HasPrefix(last.Reason, "retired: superseded for more than 36h0m0s (since ") {
		t.Fatalf("v1's last event %+v", last)
	}
	// Enabled again by hand: left alone. Made decrypt-only: retired again.
	if _, err := st.EnableVersion(ctx, "k", 1, "need an old message"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(day) // t0+3d: v2 due too
	if rep, err := r.RunOnce(ctx); err != nil || !slices.Equal(versionsOf(rep.Retired), []int{2}) {
		t.Fatalf("pass: %+v, %v; want v2 retired only", rep, err)
	}
	if _, err := st.SetDecryptOnly(ctx, "k", 1, "read-only again"); err != nil {
		t.Fatal(err)
	}
	if rep, err := r.RunOnce(ctx); err != nil || !slices.Equal(versionsOf(rep.Retired), []int{1}) {
		t.Fatalf("pass: %+v, %v; want v1 retired again", rep, err)
	}
	if got := states(); !slices.Equal(got, []keystore.VersionState{dis, dis, dis, en}) {
		t.Fatalf("states %v", got)
	}
}

func TestRetireDue(t *testing.T) {
	p := Policy{RetireAfter: time.Hour}
	if due, at := retireDue(p, t0, t0.Add(time.Hour-1)); due || !at.Equal(t0.Add(time.Hour)) {
		t.Errorf("early: %v %v", due, at)
	}
	if due, _ := retireDue(p, t0, t0.Add(time.Hour)); !due {
		t.Error("not due at RetireAfter")
	}
	if due, at := retireDue(Policy{}, t0, t0.Add(1e6*time.Hour)); due || !at.IsZero() {
		t.Error("RetireAfter 0 retired a version")
	}
}
