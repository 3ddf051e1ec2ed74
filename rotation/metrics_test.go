package rotation

import (
	"context"
	"errors"
	"fmt"
	"math"
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

// TestMetricsExposition checks the served text byte for byte against what
// the Prometheus client library (client_golang v1.25, which this endpoint
// used before) served for the same state: family and series order, label
// escaping, number format, and the handler-error series.
func TestMetricsExposition(t *testing.T) {
	c := newFakeClock()
	s := newMemStore(c)
	s.add("stay", Policy{Every: day}, runT0)
	s.add("we\"ird\\k\ney", Policy{Every: day}, runT0)
	m := NewMetrics()
	const before = `# HELP keystack_rotation_last_run_timestamp_seconds Unix time at which the last rotation pass finished.
# TYPE keystack_rotation_last_run_timestamp_seconds gauge
keystack_rotation_last_run_timestamp_seconds 0
# HELP keystack_rotation_runs_total Rotation passes by outcome (ok or error).
# TYPE keystack_rotation_runs_total counter
keystack_rotation_runs_total{outcome="error"} 0
keystack_rotation_runs_total{outcome="ok"} 0
# HELP promhttp_metric_handler_errors_total Total number of internal errors encountered by the promhttp metric handler.
# TYPE promhttp_metric_handler_errors_total counter
promhttp_metric_handler_errors_total{cause="encoding"} 0
promhttp_metric_handler_errors_total{cause="gathering"} 0
`
	if got := scrapeHandler(t, m); got != before {
		t.Errorf("before any pass:\n%s\nwant:\n%s", got, before)
	}
	r := &Runner{Store: s, Now: c.Now, Metrics: m}
	if _, err := r.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.observeKey(KeyReport{Key: "stay", Outcome: OutcomeRotated})
	m.observeKey(KeyReport{Key: "x", Outcome: OutcomeFailed})
	m.observeKey(KeyReport{Key: "x", Outcome: OutcomeNotDue}) // not an attempt: not counted
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4; charset=utf-8") {
		t.Errorf("Content-Type %q, want the text format 0.0.4", ct)
	}
	const after = `# HELP keystack_rotation_last_run_timestamp_seconds Unix time at which the last rotation pass finished.
# TYPE keystack_rotation_last_run_timestamp_seconds gauge
keystack_rotation_last_run_timestamp_seconds 1.7487684e+09
# HELP keystack_rotation_next_rotation_timestamp_seconds Unix time at which each key with a rotation policy is next due.
# TYPE keystack_rotation_next_rotation_timestamp_seconds gauge
keystack_rotation_next_rotation_timestamp_seconds{key="stay"} 1.7488548e+09
keystack_rotation_next_rotation_timestamp_seconds{key="we\"ird\\k\ney"} 1.7488548e+09
# HELP keystack_rotation_rotations_total Key rotation attempts by key and outcome (success or failure).
# TYPE keystack_rotation_rotations_total counter
keystack_rotation_rotations_total{key="stay",outcome="success"} 1
keystack_rotation_rotations_total{key="x",outcome="failure"} 1
# HELP keystack_rotation_runs_total Rotation passes by outcome (ok or error).
# TYPE keystack_rotation_runs_total counter
keystack_rotation_runs_total{outcome="error"} 0
keystack_rotation_runs_total{outcome="ok"} 1
# HELP promhttp_metric_handler_errors_total Total number of internal errors encountered by the promhttp metric handler.
# TYPE promhttp_metric_handler_errors_total counter
promhttp_metric_handler_errors_total{cause="encoding"} 0
promhttp_metric_handler_errors_total{cause="gathering"} 0
`
	if got := rec.Body.String(); got != after {
		t.Errorf("after a pass:\n%s\nwant:\n%s", got, after)
	}
}

func TestMetricsValueFormat(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 2: "2", 0.5: "0.5", 1e21: "1e+21", math.Inf(1): "+Inf", math.Inf(-1): "-Inf", math.NaN(): "NaN"} {
		if got := formatValue(v); got != want {
			t.Errorf("formatValue(%v) = %q, want %q", v, got, want)
		}
	}
}
