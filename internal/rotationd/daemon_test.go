package rotationd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keystack/keystack/rotation"
)

// testWait bounds every wait on the daemon; tests never sleep to pace it.
const testWait = 10 * time.Second

// fakeTicker is a Ticker the test drives. Its channel is unbuffered, so a
// tick is taken only when the daemon is idle, after its previous pass.
type fakeTicker struct {
	c       chan time.Time
	stopped atomic.Bool
}

func (f *fakeTicker) C() <-chan time.Time { return f.c }
func (f *fakeTicker) Stop()               { f.stopped.Store(true) }

func (f *fakeTicker) tick(t *testing.T) {
	t.Helper()
	select {
	case f.c <- time.Time{}:
	case <-time.After(testWait):
		t.Fatal("daemon did not take the tick")
	}
}

// runT0 is the fake clock's time in reports.
var runT0 = time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// fakeRunner is a Runner the test scripts: pass (nil: an empty report)
// makes pass number n (from 0) with the context the daemon gave it; each
// finished pass's number is sent on done.
type fakeRunner struct {
	pass func(ctx context.Context, n int) (*rotation.RunReport, error)
	done chan int

	mu sync.Mutex
	n  int
}

func newFakeRunner() *fakeRunner { return &fakeRunner{done: make(chan int, 16)} }

func (f *fakeRunner) RunOnce(ctx context.Context) (*rotation.RunReport, error) {
	f.mu.Lock()
	n := f.n
	f.n++
	f.mu.Unlock()
	rep, err := &rotation.RunReport{Finished: runT0}, error(nil)
	if f.pass != nil {
		rep, err = f.pass(ctx, n)
	}
	f.done <- n
	return rep, err
}

func (f *fakeRunner) passes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// waitPass waits for pass n to finish.
func waitPass(t *testing.T, f *fakeRunner, n int) {
	t.Helper()
	select {
	case got := <-f.done:
		if got != n {
			t.Fatalf("pass %d finished, want %d", got, n)
		}
	case <-time.After(testWait):
		t.Fatalf("pass %d did not finish", n)
	}
}

// startDaemon runs d until the returned stop func cancels it; stop returns
// Run's error.
func startDaemon(t *testing.T, d *Daemon) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(testWait):
			t.Fatal("daemon did not stop")
			return nil
		}
	}
}

// checkGoroutinesSettle fails if the goroutine count does not come back down
// to base: the daemon must leave nothing running after Run returns.
func checkGoroutinesSettle(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, want <= %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newTestDaemon(t *testing.T, r Runner) (*Daemon, *fakeTicker) {
	tk := &fakeTicker{c: make(chan time.Time)}
	d := &Daemon{
		Runner:   r,
		Interval: time.Hour,
		NewTicker: func(d time.Duration) Ticker {
			if d != time.Hour {
				t.Errorf("ticker interval %v, want 1h", d)
			}
			return tk
		},
	}
	return d, tk
}

func TestDaemonRunsOnTicks(t *testing.T) {
	base := runtime.NumGoroutine()
	r := newFakeRunner()
	d, tk := newTestDaemon(t, r)
	stop := startDaemon(t, d)

	waitPass(t, r, 0) // the pass at start
	for n := 1; n <= 3; n++ {
		tk.tick(t) // taken only when the daemon is idle: its last pass finished
		waitPass(t, r, n)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v after cancellation, want nil", err)
	}
	if n := r.passes(); n != 4 {
		t.Errorf("%d passes, want 4: one at start and one per tick", n)
	}
	if !tk.stopped.Load() {
		t.Error("ticker not stopped")
	}
	checkGoroutinesSettle(t, base)
}

func TestDaemonFinishesInFlightPass(t *testing.T) {
	r := newFakeRunner()
	entered, release := make(chan struct{}), make(chan struct{})
	passCtxErr := make(chan error, 1)
	r.pass = func(ctx context.Context, _ int) (*rotation.RunReport, error) {
		close(entered)
		<-release
		passCtxErr <- ctx.Err()
		return &rotation.RunReport{}, nil
	}
	d, _ := newTestDaemon(t, r)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	<-entered
	cancel() // the signal arrives mid-pass
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := <-passCtxErr; err != nil {
		t.Errorf("the in-flight pass saw its context %v; it should finish within the grace period", err)
	}
	if r.passes() != 1 {
		t.Errorf("%d passes, want the in-flight one, completed", r.passes())
	}
}

func TestDaemonGraceExpires(t *testing.T) {
	r := newFakeRunner()
	entered := make(chan struct{})
	var sawCancel atomic.Bool
	r.pass = func(ctx context.Context, _ int) (*rotation.RunReport, error) {
		close(entered)
		select {
		case <-ctx.Done():
			sawCancel.Store(true)
		case <-time.After(testWait):
		}
		return &rotation.RunReport{}, ctx.Err()
	}
	d, _ := newTestDaemon(t, r)
	d.Grace = time.Millisecond
	stop := startDaemon(t, d)
	<-entered
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !sawCancel.Load() {
		t.Error("the in-flight pass was not cancelled after the grace period")
	}
}

// metricsPasses are two passes an hour apart over keys a (due, rotates),
// b (due, fails both times) and c (not due).
func metricsPasses(_ context.Context, n int) (*rotation.RunReport, error) {
	now := runT0.Add(time.Duration(n) * time.Hour)
	failed := rotation.KeyReport{Key: "b", Outcome: rotation.OutcomeFailed, OldVersion: 1, Next: runT0, Reason: "kms: throttled"}
	c := rotation.KeyReport{Key: "c", Outcome: rotation.OutcomeNotDue, OldVersion: 1, Next: runT0.Add(9 * day)}
	a := rotation.KeyReport{Key: "a", Outcome: rotation.OutcomeRotated, OldVersion: 1, NewVersion: 2, Next: runT0.Add(day)}
	rep := &rotation.RunReport{Started: now, Finished: now, Rotated: []rotation.KeyReport{a},
		NotDue: []rotation.KeyReport{c}, Failed: []rotation.KeyReport{failed}}
	if n > 0 {
		a.Outcome, a.OldVersion, a.NewVersion = rotation.OutcomeNotDue, 2, 0
		rep.Rotated, rep.NotDue = []rotation.KeyReport{}, []rotation.KeyReport{a, c}
	}
	return rep, fmt.Errorf("%w: key %q: kms: throttled", rotation.ErrRotationFailed, "b")
}

func TestDaemonMetricsEndpoint(t *testing.T) {
	base := runtime.NumGoroutine()
	r := newFakeRunner()
	r.pass = metricsPasses
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, tk := newTestDaemon(t, r)
	d.MetricsListener = ln
	stop := startDaemon(t, d)
	waitPass(t, r, 0)
	tk.tick(t)
	waitPass(t, r, 1)

	url := "http://" + ln.Addr().String() + "/metrics"
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: testWait}
	// The daemon records a pass once RunOnce returns: wait for the second.
	text := scrapeUntil(t, client, url, `keystack_rotation_runs_total{outcome="error"} 2`)
	for _, want := range []string{
		`keystack_rotation_rotations_total{key="a",outcome="success"} 1`,
		`keystack_rotation_rotations_total{key="b",outcome="failure"} 2`, // failed on both passes
		`keystack_rotation_runs_total{outcome="error"} 2`,
		`keystack_rotation_runs_total{outcome="ok"} 0`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, `key="c",outcome=`) {
		t.Errorf("metrics count a rotation of c, which was not due:\n%s", text)
	}
	checkGauge(t, text, `keystack_rotation_next_rotation_timestamp_seconds{key="a"}`, runT0.Add(day))
	checkGauge(t, text, `keystack_rotation_next_rotation_timestamp_seconds{key="c"}`, runT0.Add(9*day))
	checkGauge(t, text, `keystack_rotation_last_run_timestamp_seconds`, runT0.Add(time.Hour))

	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if resp, err := client.Get(url); err == nil {
		resp.Body.Close()
		t.Error("metrics still served after Run returned")
	}
	checkGoroutinesSettle(t, base)
}

// scrapeUntil scrapes url until a line is line, and returns that text.
func scrapeUntil(t *testing.T, client *http.Client, url, line string) string {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for {
		text := scrape(t, client, url)
		if strings.Contains(text, line+"\n") || time.Now().After(deadline) {
			return text
		}
		time.Sleep(5 * time.Millisecond)
	}
}
func scrape(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %s, err %v", resp.Status, err)
	}
	return string(body)
}

// checkGauge finds the sample line for series and compares its value, a
// Unix time in seconds, with want.
func checkGauge(t *testing.T, text, series string, want time.Time) {
	t.Helper()
	for line := range strings.Lines(text) {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" ")
		if !ok {
			continue
		}
		var got float64
		if err := json.Unmarshal([]byte(v), &got); err != nil {
			t.Fatalf("%s: bad value %q", series, v)
		}
		if got != float64(want.Unix()) {
			t.Errorf("%s = %v, want %v (%v)", series, got, want.Unix(), want)
		}
		return
	}
	t.Errorf("metrics lack %s:\n%s", series, text)
}

func TestDaemonMetricsAddr(t *testing.T) {
	r := newFakeRunner()
	d, _ := newTestDaemon(t, r)
	d.MetricsAddr = "127.0.0.1:0"
	stop := startDaemon(t, d)
	waitPass(t, r, 0)
	if err := stop(); err != nil {
		t.Fatalf("Run with MetricsAddr: %v", err)
	}

	base := runtime.NumGoroutine()
	d.MetricsAddr = "127.0.0.1:notaport"
	if err := d.Run(context.Background()); err == nil {
		t.Fatal("Run with an unusable metrics address succeeded")
	}
	checkGoroutinesSettle(t, base)
}

func TestDaemonInvalidConfig(t *testing.T) {
	for name, d := range map[string]*Daemon{
		"no interval":       {Runner: newFakeRunner()},
		"negative interval": {Runner: newFakeRunner(), Interval: -time.Second},
		"no runner":         {Interval: time.Hour},
	} {
		if err := d.Run(context.Background()); !errors.Is(err, ErrInvalidDaemon) {
			t.Errorf("%s: Run error %v, want ErrInvalidDaemon", name, err)
		}
	}
}
