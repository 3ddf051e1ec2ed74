package rotation

import (
	"context"
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the rotation engine's Prometheus metrics in a private
// registry, so several engines (or tests) in one process never collide and
// nothing leaks into the global default registry:
//
//	keystack_rotation_rotations_total{key,outcome}          counter; outcome is "success" or "failure"
//	keystack_rotation_runs_total{outcome}                   counter; outcome is "ok" or "error"
//	keystack_rotation_next_rotation_timestamp_seconds{key}  gauge; Unix time the key is next due
//	keystack_rotation_last_run_timestamp_seconds            gauge; Unix time the last pass finished
//
// A nil *Metrics records nothing.
type Metrics struct {
	reg       *prometheus.Registry
	rotations *prometheus.CounterVec
	runs      *prometheus.CounterVec
	next      *prometheus.GaugeVec
	lastRun   prometheus.Gauge
}

// NewMetrics returns metrics registered in a new private registry.
func NewMetrics() *Metrics {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "keystack", Subsystem: "rotation", Name: name, Help: help}
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts(opts("rotations_total",
			"Key rotation attempts by key and outcome (success or failure).")), []string{"key", "outcome"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts(opts("runs_total",
			"Rotation passes by outcome (ok or error).")), []string{"outcome"}),
		next: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("next_rotation_timestamp_seconds",
			"Unix time at which each key with a rotation policy is next due.")), []string{"key"}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts(opts("last_run_timestamp_seconds",
			"Unix time at which the last rotation pass finished."))),
	}
	m.reg.MustRegister(m.rotations, m.runs, m.next, m.lastRun)
	// Pre-create the unlabeled run series so a scrape before the first pass
	// shows zeros rather than nothing.
	m.runs.WithLabelValues("ok")
	m.runs.WithLabelValues("error")
	return m
}

// Handler serves the metrics in the Prometheus text exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry returns the private registry, to add collectors to or gather from.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) observeKey(kr KeyReport) {
	if m == nil {
		return
	}
	switch kr.Outcome {
	case OutcomeRotated:
		m.rotations.WithLabelValues(kr.Key, "success").Inc()
	case OutcomeFailed:
		m.rotations.WithLabelValues(kr.Key, "failure").Inc()
	}
}

// observeRun records a finished pass. The next-rotation gauges are rebuilt
// from the report, so keys removed from the store or from rotation drop out.
func (m *Metrics) observeRun(rep *RunReport, err error) {
	if m == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.runs.WithLabelValues(outcome).Inc()
	m.lastRun.Set(float64(rep.Finished.UnixNano()) / 1e9)
	switch {
	case len(rep.Rotated)+len(rep.NotDue)+len(rep.Failed) == 0 && err != nil:
		return // the store could not be read: keep the last known schedule
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		// A pass cut short saw only some keys: update those, drop none.
	default:
		m.next.Reset()
	}
	for _, list := range [][]KeyReport{rep.Rotated, rep.NotDue, rep.Failed} {
		for _, kr := range list {
			if !kr.Next.IsZero() {
				m.next.WithLabelValues(kr.Key).Set(float64(kr.Next.UnixNano()) / 1e9)
			}
		}
	}
}
