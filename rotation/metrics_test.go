package rotation

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func scrapeHandler(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("metrics handler answered %d", rec.Code)
	}
	return rec.Body.String()
}

func TestMetricsNextRotationFollowsStore(t *testing.T) {
	c := newFakeClock()
	s := newMemStore(c)
	s.add("stay", Policy{Every: day}, runT0)
	s.add("dropped", Policy{Every: day}, runT0)
	m := NewMetrics()
	r := &Runner{Store: s, Now: c.Now, Metrics: m}
	if _, err := r.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	text := scrapeHandler(t, m)
	checkGauge(t, text, `keystack_rotation_next_rotation_timestamp_seconds{key="dropped"}`, runT0.Add(day))

	// The key's policy is removed: its gauge goes with it.
	s.mu.Lock()
	s.keys["dropped"].policy = Policy{}
	s.mu.Unlock()
	if _, err := r.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	text = scrapeHandler(t, m)
	if strings.Contains(text, `key="dropped"`) {
		t.Errorf("gauge kept for a key no longer scheduled:\n%s", text)
	}
	checkGauge(t, text, `keystack_rotation_next_rotation_timestamp_seconds{key="stay"}`, runT0.Add(day))

	// The store cannot be read: the last known schedule stays, the run counts as an error.
	r.Store = &failingList{err: errors.New("unreadable")}
	if _, err := r.RunOnce(context.Background()); err == nil {
		t.Fatal("RunOnce over an unreadable store succeeded")
	}
	text = scrapeHandler(t, m)
	checkGauge(t, text, `keystack_rotation_next_rotation_timestamp_seconds{key="stay"}`, runT0.Add(day))
	for _, want := range []string{`keystack_rotation_runs_total{outcome="ok"} 2`, `keystack_rotation_runs_total{outcome="error"} 1`} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
}

func TestMetricsPrivateRegistries(t *testing.T) {
	// Two engines in one process must not collide (the global registry would panic).
	a, b := NewMetrics(), NewMetrics()
	a.observeKey(KeyReport{Key: "k", Outcome: OutcomeRotated})
	if strings.Contains(scrapeHandler(t, b), `key="k"`) {
		t.Error("metrics of one engine show up in another's registry")
	}
	var nilMetrics *Metrics // a Runner without metrics records nothing, without panicking
	nilMetrics.observeKey(KeyReport{Key: "k", Outcome: OutcomeRotated})
	nilMetrics.observeRun(&RunReport{}, nil)
}

// BenchmarkRunOncePlanning measures a pass over a store of many scheduled
// keys that are not due: the daemon's common case on each tick.
func BenchmarkRunOncePlanning(b *testing.B) {
	c := newFakeClock()
	s := newMemStore(c)
	for i := range 1000 {
		s.add(fmt.Sprintf("key-%04d", i), Policy{Every: 30 * day, Jitter: day}, runT0)
	}
	r := &Runner{Store: s, Now: c.Now, Metrics: NewMetrics()}
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
	r := &Runner{Store: s, Now: c.Now}
	for b.Loop() {
		c.Advance(time.Second)
		if rep, err := r.RunOnce(context.Background()); err != nil || len(rep.Rotated) != 1 {
			b.Fatalf("report %+v, err %v", rep, err)
		}
	}
}
