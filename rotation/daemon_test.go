package rotation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
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

// passSummary is what a "rotation pass finished" log line reported.
type passSummary struct{ rotated, notDue, failed int64 }

// passHandler is a slog.Handler that reports each finished pass on ch, so
// a test knows when the daemon is idle again.
type passHandler struct{ ch chan passSummary }

func (h *passHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *passHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *passHandler) WithGroup(string) slog.Handler            { return h }

func (h *passHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "rotation pass finished" {
		return nil
	}
	var p passSummary
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "rotated":
			p.rotated = a.Value.Int64()
		case "not_due":
			p.notDue = a.Value.Int64()
		case "failed":
			p.failed = a.Value.Int64()
		}
		return true
	})
	h.ch <- p
	return nil
}

func waitPass(t *testing.T, ch chan passSummary) passSummary {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-time.After(testWait):
		t.Fatal("no rotation pass finished")
		return passSummary{}
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

func newTestDaemon(t *testing.T, s KeyStore, c *fakeClock) (*Daemon, *fakeTicker, chan passSummary) {
	tk := &fakeTicker{c: make(chan time.Time)}
	passes := make(chan passSummary, 16)
	d := &Daemon{
		Runner:   Runner{Store: s, Now: c.Now, Log: slog.New(&passHandler{ch: passes})},
		Interval: time.Hour,
		NewTicker: func(d time.Duration) Ticker {
			if d != time.Hour {
				t.Errorf("ticker interval %v, want 1h", d)
			}
			return tk
		},
	}
	return d, tk, passes
}

func TestDaemonRunsOnTicks(t *testing.T) {
	base := runtime.NumGoroutine()
	c := newFakeClock()
	s := newMemStore(c)
	s.add("k", Policy{Every: day}, time.Time{})
	d, tk, passes := newTestDaemon(t, s, c)
	stop := startDaemon(t, d)

	if p := waitPass(t, passes); p.rotated != 1 { // the pass at start
		t.Fatalf("first pass %+v, want k rotated", p)
	}
	for _, step := range []struct {
		advance time.Duration
		want    passSummary
	}{
		{time.Hour, passSummary{notDue: 1}},
		{day, passSummary{rotated: 1}},
		{time.Hour, passSummary{notDue: 1}},
	} {
		c.Advance(step.advance) // the daemon is idle: its last pass was reported
		tk.tick(t)
		if p := waitPass(t, passes); p != step.want {
			t.Fatalf("after +%v: pass %+v, want %+v", step.advance, p, step.want)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v after cancellation, want nil", err)
	}
	if n := s.count("k"); n != 2 {
		t.Errorf("k rotated %d times, want 2", n)
	}
	if !tk.stopped.Load() {
		t.Error("ticker not stopped")
	}
	checkGoroutinesSettle(t, base)
}

func TestDaemonFinishesInFlightPass(t *testing.T) {
	c := newFakeClock()
	s := newMemStore(c)
	hook := &recordingHook{}
	s.add("k", Policy{Every: day, OnSuccess: hook}, time.Time{})
	entered, release := make(chan struct{}), make(chan struct{})
	rotateCtxErr := make(chan error, 1)
	s.onRotate = func(ctx context.Context, _ string) {
		close(entered)
		<-release
		rotateCtxErr <- ctx.Err()
	}
	d, _, _ := newTestDaemon(t, s, c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	<-entered
	cancel() // the signal arrives mid-rotation
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := <-rotateCtxErr; err != nil {
		t.Errorf("the in-flight rotation saw its context %v; it should finish within the grace period", err)
	}
	if s.count("k") != 1 || len(hook.got()) != 1 {
		t.Errorf("rotations %d, hook calls %d; want the in-flight rotation and its hook to complete", s.count("k"), len(hook.got()))
	}
}

func TestDaemonGraceExpires(t *testing.T) {
	c := newFakeClock()
	s := newMemStore(c)
	s.add("a", Policy{Every: day}, time.Time{})
	s.add("b", Policy{Every: day}, time.Time{})
	entered := make(chan struct{})
	var sawCancel atomic.Bool
	s.onRotate = func(ctx context.Context, name string) {
		if name != "a" {
			return
		}
		close(entered)
		select {
		case <-ctx.Done():
			sawCancel.Store(true)
		case <-time.After(testWait):
		}
	}
	d, _, _ := newTestDaemon(t, s, c)
	d.Grace = time.Millisecond
	stop := startDaemon(t, d)
	<-entered
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !sawCancel.Load() {
		t.Error("the in-flight pass was not cancelled after the grace period")
	}
	if s.count("b") != 0 {
		t.Error("a pass cut short by the grace period still started another key")
	}
}

func TestDaemonMetricsEndpoint(t *testing.T) {
	base := runtime.NumGoroutine()
	c := newFakeClock()
	s := newMemStore(c)
	s.add("a", Policy{Every: day}, time.Time{})
	s.add("b", Policy{Every: day}, time.Time{})
	s.add("c", Policy{Every: 10 * day}, runT0.Add(-day))
	s.fail["b"] = errKMS
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, tk, passes := newTestDaemon(t, s, c)
	d.MetricsListener = ln
	stop := startDaemon(t, d)
	waitPass(t, passes)
	c.Advance(time.Hour)
	tk.tick(t)
	waitPass(t, passes)

	url := "http://" + ln.Addr().String() + "/metrics"
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: testWait}
	text := scrape(t, client, url)
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
	c := newFakeClock()
	d, _, passes := newTestDaemon(t, newMemStore(c), c)
	d.MetricsAddr = "127.0.0.1:0"
	stop := startDaemon(t, d)
	waitPass(t, passes)
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
	c := newFakeClock()
	for name, d := range map[string]*Daemon{
		"no interval":       {Runner: Runner{Store: newMemStore(c)}},
		"negative interval": {Runner: Runner{Store: newMemStore(c)}, Interval: -time.Second},
		"no store":          {Interval: time.Hour},
	} {
		if err := d.Run(context.Background()); !errors.Is(err, ErrInvalidDaemon) {
			t.Errorf("%s: Run error %v, want ErrInvalidDaemon", name, err)
		}
	}
}

func TestNewLoggerJSON(t *testing.T) {
	c := newFakeClock()
	s := newMemStore(c)
	s.add("payments", Policy{Every: day}, time.Time{})
	s.add("broken", Policy{Every: day}, time.Time{})
	s.fail["broken"] = errKMS
	var buf bytes.Buffer
	r := &Runner{Store: s, Now: c.Now, Log: NewLogger(&buf, true, slog.LevelInfo)}
	if _, err := r.RunOnce(context.Background()); err == nil {
		t.Fatal("RunOnce with a failing key succeeded")
	}
	seen := map[string]map[string]any{}
	for line := range strings.Lines(buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if key, ok := rec["key"].(string); ok {
			seen[key] = rec
		}
	}
	if rec := seen["payments"]; rec["outcome"] != "rotated" || rec["new_version"] != 2.0 || rec["level"] != "INFO" {
		t.Errorf("payments log %v, want rotated to version 2 at INFO", rec)
	}
	if rec := seen["broken"]; rec["outcome"] != "failed" || rec["error"] != errKMS.Error() || rec["level"] != "ERROR" {
		t.Errorf("broken log %v, want failed with the store's error at ERROR", rec)
	}

	buf.Reset()
	NewLogger(&buf, false, slog.LevelInfo).Info("x", "key", "k")
	if got := buf.String(); !strings.Contains(got, "msg=x key=k") {
		t.Errorf("text logger wrote %q", got)
	}
}
