// Package rotationd is `keystack rotate daemon`: rotation passes
// (rotation.Runner) on a schedule, a Prometheus /metrics endpoint, and,
// among several daemons sharing one store, the leadership that lets only
// one of them rotate (Lease).
package rotationd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/keystack/keystack/rotation"
)

// ErrInvalidDaemon is returned by Daemon.Run for an unusable configuration.
var ErrInvalidDaemon = errors.New("rotation: invalid daemon configuration")

// Runner makes one rotation pass: *rotation.Runner.
type Runner interface {
	RunOnce(ctx context.Context) (*rotation.RunReport, error)
}

const (
	// defaultGrace is how long an in-flight pass may go on after the
	// daemon is told to stop, when Daemon.Grace is 0.
	defaultGrace = 30 * time.Second
	// metricsShutdownTimeout bounds how long scrapes in progress may
	// delay shutdown.
	metricsShutdownTimeout = 5 * time.Second
)

// Ticker delivers the daemon's check times (by default from a
// time.Ticker), and tests supply a fake so they never sleep.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// newTimeTicker returns a Ticker backed by time.NewTicker.
func newTimeTicker(d time.Duration) Ticker { return timeTicker{time.NewTicker(d)} }

type timeTicker struct{ t *time.Ticker }

func (t timeTicker) C() <-chan time.Time { return t.t.C }
func (t timeTicker) Stop()               { t.t.Stop() }

// Daemon runs Runner passes on a schedule: one at start, then one per
// Interval, and serves metrics while it runs.
type Daemon struct {
	// Runner makes the passes; required.
	Runner Runner
	// Log receives the daemon's own lines (start, stop, leadership); nil
	// discards them. The passes log through the Runner's logger.
	Log *slog.Logger
	// Interval is how often to check for due keys; required. It bounds how
	// late a rotation can be, not how often keys rotate (that is each key's
	// Policy).
	Interval time.Duration
	// MetricsAddr, when set, is a host:port on which /metrics is served
	// over HTTP. MetricsListener, when set, is used instead.
	MetricsAddr     string
	MetricsListener net.Listener
	// Grace bounds how long an in-flight pass goes on after ctx is done; 0
	// means 30 seconds. The pass then sees a cancelled context and stops
	// between keys.
	Grace time.Duration
	// NewTicker makes the ticker; nil means one backed by time.NewTicker.
	NewTicker func(time.Duration) Ticker
	// Lease, when set, makes this daemon one of several sharing the store:
	// it runs passes only while it holds the lease, and one at once when
	// it takes it over. LeaseTTL is the lease's time to live (0 means
	// DefaultLeaseTTL), which sets how often it is renewed (every third)
	// and tried by the others (every tenth). The store's writes must be
	// fenced by the same lease (see Lease).
	Lease    Lease
	LeaseTTL time.Duration
}

// Run checks for due keys until ctx is done, typically from
// signal.NotifyContext on SIGTERM and SIGINT. Then it lets the pass in
// flight finish (within Grace), stops the metrics server and returns nil.
// Failed passes are logged and counted, not returned: the daemon keeps
// going. It returns an error only for a bad configuration or when the
// metrics server cannot listen or fails.
func (d *Daemon) Run(ctx context.Context) error {
	if d.Interval <= 0 {
		return fmt.Errorf("%w: interval must be positive, got %v", ErrInvalidDaemon, d.Interval)
	}
	if d.Runner == nil {
		return fmt.Errorf("%w: no runner", ErrInvalidDaemon)
	}
	srv, err := d.startMetrics()
	if err != nil {
		return err
	}
	newTicker := d.NewTicker
	if newTicker == nil {
		newTicker = newTimeTicker
	}
	t := newTicker(d.Interval)
	defer t.Stop()
	d.logger().LogAttrs(ctx, slog.LevelInfo, "rotation daemon started",
		slog.Duration("interval", d.Interval), slog.String("metrics", srv.addr()))
	lead, stopLead := d.startLeadership(ctx, d.logger())
	defer stopLead()
	for ctx.Err() == nil {
		if lead.valid(time.Now()) {
			d.runPass(ctx, srv.metrics)
		}
		select {
		case <-ctx.Done():
		case err := <-srv.failed():
			return fmt.Errorf("rotation: metrics server: %w", err)
		case <-t.C():
		case <-lead.gainedC():
		}
	}
	d.logger().LogAttrs(context.WithoutCancel(ctx), slog.LevelInfo, "rotation daemon stopping")
	return srv.stop()
}

// startLeadership keeps d.Lease in a goroutine until ctx is done or stop
// is called; stop waits for it to release the lease. Without a Lease it returns nil, which
// is always valid.
func (d *Daemon) startLeadership(ctx context.Context, log *slog.Logger) (*leadership, func()) {
	if d.Lease == nil {
		return nil, func() {}
	}
	l := newLeadership(d.Lease, d.LeaseTTL, log)
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.run(lctx)
	}()
	return l, func() { cancel(); <-done }
}

// runPass runs one pass that outlives ctx by up to Grace, so a stop signal
// does not cut a rotation short between the store and its hooks, and
// records it in m.
func (d *Daemon) runPass(ctx context.Context, m *Metrics) {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	grace := d.Grace
	if grace <= 0 {
		grace = defaultGrace
	}
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-pctx.Done():
		}
	})
	defer stop()
	m.observe(d.Runner.RunOnce(pctx)) // logged by RunOnce
}

func (d *Daemon) logger() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.New(slog.DiscardHandler)
}

// metricsServer is the optional /metrics endpoint; the zero value is off.
type metricsServer struct {
	metrics *Metrics // nil when off
	srv     *http.Server
	ln      net.Listener
	errc    chan error // Serve's result, buffered
	once    sync.Once
	err     error
}

func (d *Daemon) startMetrics() (*metricsServer, error) {
	ln := d.MetricsListener
	if ln == nil && d.MetricsAddr == "" {
		return &metricsServer{}, nil
	}
	m := NewMetrics()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", d.MetricsAddr); err != nil {
			return nil, fmt.Errorf("rotation: metrics server: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	s := &metricsServer{metrics: m, ln: ln, errc: make(chan error, 1), srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(d.logger().Handler(), slog.LevelWarn),
	}}
	go func() { s.errc <- s.srv.Serve(ln) }()
	return s, nil
}

func (s *metricsServer) addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// failed delivers Serve's error if it stops on its own; nil (never ready)
// when there is no server.
func (s *metricsServer) failed() <-chan error { return s.errc }

// stop shuts the server down, waiting for scrapes in progress up to
// metricsShutdownTimeout, and for Serve to return.
func (s *metricsServer) stop() error {
	if s.srv == nil {
		return nil
	}
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), metricsShutdownTimeout)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
		if err := <-s.errc; !errors.Is(err, http.ErrServerClosed) {
			s.err = fmt.Errorf("rotation: metrics server: %w", err)
		}
	})
	return s.err
}
