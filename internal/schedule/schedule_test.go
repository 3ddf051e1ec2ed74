package schedule

import (
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestDue(t *testing.T) {
	day := 24 * time.Hour
	p := Policy{Every: 30 * day}
	for _, tc := range []struct {
		name    string
		p       Policy
		last    time.Time
		now     time.Time
		wantDue bool
		wantAt  time.Time
	}{
		{"disabled", Policy{}, t0, t0.Add(1000 * day), false, time.Time{}},
		{"never rotated", p, time.Time{}, t0, true, t0},
		{"fresh", p, t0, t0, false, t0.Add(30 * day)},
		{"one ns early", p, t0, t0.Add(30*day - 1), false, t0.Add(30 * day)},
		{"exactly due", p, t0, t0.Add(30 * day), true, t0.Add(30 * day)},
		{"overdue", p, t0, t0.Add(90 * day), true, t0.Add(30 * day)},
	} {
		due, at := Due(tc.p, tc.last, tc.now, "key-1")
		if due != tc.wantDue || !at.Equal(tc.wantAt) {
			t.Errorf("%s: Due = %v, %v; want %v, %v", tc.name, due, at, tc.wantDue, tc.wantAt)
		}
	}
}

func TestDueJitter(t *testing.T) {
	p := Policy{Every: 24 * time.Hour, Jitter: time.Hour}
	offsets := map[time.Duration]bool{}
	for i := range 200 {
		name := "key-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		_, at := Due(p, t0, t0, name)
		off := at.Sub(t0) - p.Every
		if off < 0 || off >= p.Jitter {
			t.Fatalf("%s: offset %v outside [0, %v)", name, off, p.Jitter)
		}
		if _, again := Due(p, t0, t0.Add(time.Minute), name); !again.Equal(at) {
			t.Fatalf("%s: due time not reproducible: %v then %v", name, at, again)
		}
		// Due exactly at the jittered time, not before.
		if due, _ := Due(p, t0, at.Add(-1), name); due {
			t.Fatalf("%s: due before its jittered time", name)
		}
		if due, _ := Due(p, t0, at, name); !due {
			t.Fatalf("%s: not due at its jittered time", name)
		}
		offsets[off.Truncate(time.Minute)] = true
	}
	// 200 names over 60 one-minute buckets: a working spread fills most of them.
	if len(offsets) < 40 {
		t.Errorf("jitter spread 200 keys over only %d of 60 minutes", len(offsets))
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, p := range []Policy{
		{Every: -1}, {Jitter: -1}, {RetireAfter: -1},
		{Jitter: time.Minute},
		{Every: time.Hour, Jitter: time.Hour},
	} {
		if err := p.Validate(); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("%+v: err = %v, want ErrInvalidPolicy", p, err)
		}
	}
	for _, p := range []Policy{{}, {Every: time.Hour, Jitter: time.Hour - 1, RetireAfter: time.Hour}} {
		if err := p.Validate(); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
	}
}
