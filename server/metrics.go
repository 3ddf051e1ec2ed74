package server

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// metrics are the server's own metrics, written in the Prometheus text
// exposition format (0.0.4) by hand, as the rotation daemon's are, so that
// no command links the Prometheus client library:
//
//	keystack_server_requests_total{op,result}     counter; result is "ok" or the KMS error name
//	keystack_server_request_duration_seconds{op}  histogram
//
// Denials are the series with result="AccessDeniedException", throttled
// requests those with result="ThrottlingException".
type metrics struct {
	mu       sync.Mutex
	requests map[[2]string]uint64 // {op, result}
	latency  map[string]*histogram
}

// latencyBuckets are the histogram's upper bounds, in seconds: 100 µs to
// about 3.3 s, doubling.
var latencyBuckets = func() []float64 {
	b := make([]float64, 16)
	for i := range b {
		b[i] = 0.0001 * float64(uint(1)<<i)
	}
	return b
}()

type histogram struct {
	counts []uint64 // per bucket, not cumulative
	sum    float64
	n      uint64
}

func newMetrics() *metrics {
	return &metrics{requests: map[[2]string]uint64{}, latency: map[string]*histogram{}}
}

// observe records one answered request. Unknown operation names are
// counted as "unknown", so a client cannot grow the label set.
func (m *metrics) observe(op, result string, d time.Duration, known bool) {
	if !known {
		op = "unknown"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[[2]string{op, result}]++
	h := m.latency[op]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(latencyBuckets))}
		m.latency[op] = h
	}
	s := d.Seconds()
	if i, _ := slices.BinarySearch(latencyBuckets, s); i < len(latencyBuckets) {
		h.counts[i]++
	}
	h.sum += s
	h.n++
}

// metricsHandler serves the server's metrics in the Prometheus text
// format; Serve exposes it on ListenConfig.MetricsAddr.
func (s *Server) metricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(s.metrics.exposition())
	})
}

func (m *metrics) exposition() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b bytes.Buffer
	b.WriteString("# HELP keystack_server_requests_total KMS requests by operation and result (ok or the KMS error name).\n")
	b.WriteString("# TYPE keystack_server_requests_total counter\n")
	keys := slices.SortedFunc(maps.Keys(m.requests), cmpPair)
	for _, k := range keys {
		fmt.Fprintf(&b, "keystack_server_requests_total{op=%q,result=%q} %d\n", k[0], k[1], m.requests[k])
	}
	b.WriteString("# HELP keystack_server_request_duration_seconds KMS request latency by operation.\n")
	b.WriteString("# TYPE keystack_server_request_duration_seconds histogram\n")
	for _, op := range slices.Sorted(maps.Keys(m.latency)) {
		h := m.latency[op]
		var cum uint64
		for i, le := range latencyBuckets {
			cum += h.counts[i]
			fmt.Fprintf(&b, "keystack_server_request_duration_seconds_bucket{op=%q,le=%q} %d\n", op, strconv.FormatFloat(le, 'g', -1, 64), cum)
		}
		fmt.Fprintf(&b, "keystack_server_request_duration_seconds_bucket{op=%q,le=\"+Inf\"} %d\n", op, h.n)
		fmt.Fprintf(&b, "keystack_server_request_duration_seconds_sum{op=%q} %s\n", op, strconv.FormatFloat(h.sum, 'g', -1, 64))
		fmt.Fprintf(&b, "keystack_server_request_duration_seconds_count{op=%q} %d\n", op, h.n)
	}
	return b.Bytes()
}

func cmpPair(a, b [2]string) int {
	if c := cmp.Compare(a[0], b[0]); c != 0 {
		return c
	}
	return cmp.Compare(a[1], b[1])
}
