package rotationd

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keystack/keystack/rotation"
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

// notDue is the report line of key, not due until next.
func notDue(key string, next time.Time) rotation.KeyReport {
	return rotation.KeyReport{Key: key, Outcome: rotation.OutcomeNotDue, OldVersion: 1, Next: next}
}

func TestMetricsNextRotationFollowsReports(t *testing.T) {
	m := NewMetrics()
	m.observe(&rotation.RunReport{Finished: runT0, NotDue: []rotation.KeyReport{notDue("stay", runT0.Add(day)), notDue("dropped", runT0.Add(day))}}, nil)
	text := scrapeHandler(t, m)
	checkGauge(t, text, `keystack_rotation_next_rotation_timestamp_seconds{key="dropped"}`, runT0.Add(day))

	// The key's policy is removed, so the next pass does not list it: its gauge goes with it.
	m.observe(&rotation.RunReport{Finished: runT0, NotDue: []rotation.KeyReport{notDue("stay", runT0.Add(day))}}, nil)
	text = scrapeHandler(t, m)
	if strings.Contains(text, `key="dropped"`) {
		t.Errorf("gauge kept for a key no longer scheduled:\n%s", text)
	}
	checkGauge(t, text, `keystack_rotation_next_rotation_timestamp_seconds{key="stay"}`, runT0.Add(day))

	// The store cannot be read (an empty report and an error): the last
	// known schedule stays, the run counts as an error.
	m.observe(&rotation.RunReport{Finished: runT0}, errors.New("rotation: list keys: unreadable"))
	text = scrapeHandler(t, m)
	checkGauge(t, text, `keystack_rotation_next_rotation_timestamp_seconds{key="stay"}`, runT0.Add(day))
	for _, want := range []string{`keystack_rotation_runs_total{outcome="ok"} 2`, `keystack_rotation_runs_total{outcome="error"} 1`} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}

	// A pass cut short saw only some keys: it updates those and drops none.
	m.observe(&rotation.RunReport{Finished: runT0, NotDue: []rotation.KeyReport{notDue("new", runT0.Add(2*day))}}, context.Canceled)
	text = scrapeHandler(t, m)
	checkGauge(t, text, `keystack_rotation_next_rotation_timestamp_seconds{key="stay"}`, runT0.Add(day))
	checkGauge(t, text, `keystack_rotation_next_rotation_timestamp_seconds{key="new"}`, runT0.Add(2*day))
}

func TestMetricsPrivateRegistries(t *testing.T) {
	// Two daemons in one process must not collide (the global registry would panic).
	a, b := NewMetrics(), NewMetrics()
	a.observeKey(rotation.KeyReport{Key: "k", Outcome: rotation.OutcomeRotated})
	if strings.Contains(scrapeHandler(t, b), `key="k"`) {
		t.Error("metrics of one daemon show up in another's registry")
	}
	var nilMetrics *Metrics // a daemon without metrics records nothing, without panicking
	nilMetrics.observe(&rotation.RunReport{Rotated: []rotation.KeyReport{{Key: "k", Outcome: rotation.OutcomeRotated}}}, nil)
}

// handlerErrors is the exposition's last family, promhttp's handler-error
// series, with no errors.
const handlerErrors = `# HELP promhttp_metric_handler_errors_total Total number of internal errors encountered by the promhttp metric handler.
# TYPE promhttp_metric_handler_errors_total counter
promhttp_metric_handler_errors_total{cause="encoding"} 0
promhttp_metric_handler_errors_total{cause="gathering"} 0
`

// TestMetricsExposition checks the served text byte for byte against what
// the Prometheus client library (client_golang v1.25, which this endpoint
// used before) served for the same state: family and series order, label
// escaping, number format, and the handler-error series.
func TestMetricsExposition(t *testing.T) {
	m := NewMetrics()
	const before = `# HELP keystack_rotation_last_run_timestamp_seconds Unix time at which the last rotation pass finished.
# TYPE keystack_rotation_last_run_timestamp_seconds gauge
keystack_rotation_last_run_timestamp_seconds 0
# HELP keystack_rotation_runs_total Rotation passes by outcome (ok or error).
# TYPE keystack_rotation_runs_total counter
keystack_rotation_runs_total{outcome="error"} 0
keystack_rotation_runs_total{outcome="ok"} 0
` + handlerErrors
	if got := scrapeHandler(t, m); got != before {
		t.Errorf("before any pass:\n%s\nwant:\n%s", got, before)
	}
	m.observe(&rotation.RunReport{Finished: runT0,
		NotDue:  []rotation.KeyReport{notDue("stay", runT0.Add(day)), notDue("we\"ird\\k\ney", runT0.Add(day))},
		Retired: []rotation.RetireReport{{Key: "stay", Version: 1}}, RetireFailed: []rotation.RetireReport{{Key: "x", Version: 2}}}, nil)
	m.observeKey(rotation.KeyReport{Key: "stay", Outcome: rotation.OutcomeRotated})
	m.observeKey(rotation.KeyReport{Key: "x", Outcome: rotation.OutcomeFailed})
	m.observeKey(rotation.KeyReport{Key: "x", Outcome: rotation.OutcomeNotDue}) // not an attempt: not counted
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
# HELP keystack_rotation_retirements_total Retirements of superseded key versions by key and outcome (success or failure).
# TYPE keystack_rotation_retirements_total counter
keystack_rotation_retirements_total{key="stay",outcome="success"} 1
keystack_rotation_retirements_total{key="x",outcome="failure"} 1
# HELP keystack_rotation_rotations_total Key rotation attempts by key and outcome (success or failure).
# TYPE keystack_rotation_rotations_total counter
keystack_rotation_rotations_total{key="stay",outcome="success"} 1
keystack_rotation_rotations_total{key="x",outcome="failure"} 1
# HELP keystack_rotation_runs_total Rotation passes by outcome (ok or error).
# TYPE keystack_rotation_runs_total counter
keystack_rotation_runs_total{outcome="error"} 0
keystack_rotation_runs_total{outcome="ok"} 1
` + handlerErrors
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
