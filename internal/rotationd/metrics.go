package rotationd

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/keystack/keystack/rotation"
)

// Metrics holds a rotation daemon's metrics, private to it, so several
// daemons (or tests) in one process never share a series:
//
//	keystack_rotation_rotations_total{key,outcome}          counter; outcome is "success" or "failure"
//	keystack_rotation_retirements_total{key,outcome}        counter; superseded versions retired: "success" or "failure"
//	keystack_rotation_runs_total{outcome}                   counter; outcome is "ok" or "error"
//	keystack_rotation_next_rotation_timestamp_seconds{key}  gauge; Unix time the key is next due
//	keystack_rotation_last_run_timestamp_seconds            gauge; Unix time the last pass finished
//	promhttp_metric_handler_errors_total{cause}             counter; scrapes whose response failed to write
//
// Handler serves them in the Prometheus text exposition format (0.0.4),
// written here rather than with the Prometheus client library: linking
// that library (and protobuf under it) cost every keystack command its
// package initialisation, about a fifth of an empty encrypt's start-up,
// for an endpoint only the rotation daemon serves.
//
// A nil *Metrics records nothing.
type Metrics struct {
	mu        sync.Mutex
	rotations map[[2]string]float64 // {key, outcome}
	retires   map[[2]string]float64 // {key, outcome}
	runs      map[string]float64    // outcome
	next      map[string]float64    // key
	lastRun   float64
	errs      map[string]float64 // cause; promhttp's handler-error series, kept for scrape compatibility
}

// The families' names and help texts.
const (
	famRotations = "keystack_rotation_rotations_total"
	famRetires   = "keystack_rotation_retirements_total"
	famRuns      = "keystack_rotation_runs_total"
	famNext      = "keystack_rotation_next_rotation_timestamp_seconds"
	famLastRun   = "keystack_rotation_last_run_timestamp_seconds"
	famErrors    = "promhttp_metric_handler_errors_total"

	helpRotations = "Key rotation attempts by key and outcome (success or failure)."
	helpRetires   = "Retirements of superseded key versions by key and outcome (success or failure)."
	helpRuns      = "Rotation passes by outcome (ok or error)."
	helpNext      = "Unix time at which each key with a rotation policy is next due."
	helpLastRun   = "Unix time at which the last rotation pass finished."
	helpErrors    = "Total number of internal errors encountered by the promhttp metric handler."
)

// NewMetrics returns a new, private set of metrics. The run counters and
// the handler-error counters exist from the start, so a scrape before the
// first pass shows zeros rather than nothing.
func NewMetrics() *Metrics {
	return &Metrics{
		rotations: map[[2]string]float64{},
		retires:   map[[2]string]float64{},
		runs:      map[string]float64{"ok": 0, "error": 0},
		next:      map[string]float64{},
		errs:      map[string]float64{"encoding": 0, "gathering": 0},
	}
}

// Handler serves the metrics in the Prometheus text exposition format.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		body := m.exposition()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		if _, err := w.Write(body); err != nil {
			m.mu.Lock()
			m.errs["encoding"]++
			m.mu.Unlock()
		}
	})
}

// exposition renders every family, sorted by name, each series sorted by
// its label values, as the Prometheus client library orders them.
func (m *Metrics) exposition() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b bytes.Buffer
	family(&b, famLastRun, helpLastRun, "gauge", []series{{value: m.lastRun}})
	family(&b, famNext, helpNext, "gauge", oneLabel("key", m.next))
	family(&b, famRetires, helpRetires, "counter", keyOutcome(m.retires))
	family(&b, famRotations, helpRotations, "counter", keyOutcome(m.rotations))
	family(&b, famRuns, helpRuns, "counter", oneLabel("outcome", m.runs))
	family(&b, famErrors, helpErrors, "counter", oneLabel("cause", m.errs))
	return b.Bytes()
}

// series is one sample: label name/value pairs and its value.
type series struct {
	labels []string
	value  float64
}

func keyOutcome(vals map[[2]string]float64) []series {
	out := make([]series, 0, len(vals))
	for k, v := range vals {
		out = append(out, series{labels: []string{"key", k[0], "outcome", k[1]}, value: v})
	}
	return out
}

func oneLabel(name string, vals map[string]float64) []series {
	out := make([]series, 0, len(vals))
	for k, v := range vals {
		out = append(out, series{labels: []string{name, k}, value: v})
	}
	return out
}

// family writes one metric family; a family without series is left out.
func family(b *bytes.Buffer, name, help, typ string, ss []series) {
	if len(ss) == 0 {
		return
	}
	slices.SortFunc(ss, func(x, y series) int { return slices.Compare(x.labels, y.labels) })
	b.WriteString("# HELP " + name + " " + escapeHelp.Replace(help) + "\n")
	b.WriteString("# TYPE " + name + " " + typ + "\n")
	for _, s := range ss {
		b.WriteString(name)
		for i := 0; i+1 < len(s.labels); i += 2 {
			sep := ","
			if i == 0 {
				sep = "{"
			}
			b.WriteString(sep + s.labels[i] + `="` + escapeLabel.Replace(s.labels[i+1]) + `"`)
		}
		if len(s.labels) > 0 {
			b.WriteByte('}')
		}
		b.WriteByte(' ')
		b.WriteString(formatValue(s.value))
		b.WriteByte('\n')
	}
}

var (
	escapeHelp  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	escapeLabel = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// formatValue writes a sample value as the text format spells it.
func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// observe records a pass's report and error, as RunOnce returned them.
func (m *Metrics) observe(rep *rotation.RunReport, err error) {
	if m == nil {
		return
	}
	for _, list := range [][]rotation.KeyReport{rep.Rotated, rep.Failed} {
		for _, kr := range list {
			m.observeKey(kr)
		}
	}
	m.mu.Lock()
	for _, rr := range rep.Retired {
		m.retires[[2]string{rr.Key, "success"}]++
	}
	for _, rr := range rep.RetireFailed {
		m.retires[[2]string{rr.Key, "failure"}]++
	}
	m.mu.Unlock()
	m.observeRun(rep, err)
}

func (m *Metrics) observeKey(kr rotation.KeyReport) {
	if m == nil {
		return
	}
	var outcome string
	switch kr.Outcome {
	case rotation.OutcomeRotated:
		outcome = "success"
	case rotation.OutcomeFailed:
		outcome = "failure"
	default:
		return
	}
	m.mu.Lock()
	m.rotations[[2]string{kr.Key, outcome}]++
	m.mu.Unlock()
}

// observeRun records a finished pass. The next-rotation gauges are rebuilt
// from the report, so keys removed from the store or from rotation drop out.
func (m *Metrics) observeRun(rep *rotation.RunReport, err error) {
	if m == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs[outcome]++
	m.lastRun = float64(rep.Finished.UnixNano()) / 1e9
	switch {
	case len(rep.Rotated)+len(rep.NotDue)+len(rep.Failed) == 0 && err != nil:
		return // the store could not be read: keep the last known schedule
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		// A pass cut short saw only some keys: update those, drop none.
	default:
		clear(m.next)
	}
	for _, list := range [][]rotation.KeyReport{rep.Rotated, rep.NotDue, rep.Failed} {
		for _, kr := range list {
			if !kr.Next.IsZero() {
				m.next[kr.Key] = float64(kr.Next.UnixNano()) / 1e9
			}
		}
	}
}
