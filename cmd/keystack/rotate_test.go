package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runCLI runs the app in-process with argv (after the program name).
func runCLI(ctx context.Context, t *testing.T, stderr io.Writer, argv ...string) error {
	t.Helper()
	app := newApp()
	app.Writer, app.ErrWriter = io.Discard, stderr
	return app.RunContext(ctx, permuteArgs(app, append([]string{"keystack"}, argv...)))
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// daemonRun is a "rotate daemon" started in-process by startDaemon.
type daemonRun struct {
	home, addr string
	done       chan error // its return value
	cancel     context.CancelFunc
	logs       *bytes.Buffer // its JSON log, read once done
}

// startDaemon makes a store with key k1, runs each of setup (argv after
// --home HOME) on it, and starts "rotate daemon" with interval and
// metrics on a free loopback port; the test's end cancels it.
func startDaemon(t *testing.T, interval string, setup ...[]string) daemonRun {
	t.Helper()
	d := daemonRun{home: filepath.Join(t.TempDir(), "home"), addr: freeAddr(t), done: make(chan error, 1), logs: new(bytes.Buffer)}
	ctx := context.Background()
	for _, argv := range append([][]string{{"init", "--insecure-no-passphrase"}, {"key", "create", "k1"}}, setup...) {
		if err := runCLI(ctx, t, io.Discard, append([]string{"--home", d.home}, argv...)...); err != nil {
			t.Fatalf("%v: %v", argv, err)
		}
	}
	dctx, cancel := context.WithCancel(ctx)
	d.cancel = cancel
	t.Cleanup(cancel)
	go func() {
		d.done <- runCLI(dctx, t, d.logs, "--home", d.home, "rotate", "daemon",
			"--interval", interval, "--metrics-addr", d.addr, "--log-format", "json")
	}()
	return d
}

// TestRotateDaemonStops starts "rotate daemon" in-process, waits until it
// serves metrics for a pass that rotated a key, cancels its context (as
// SIGTERM does through run) and expects a clean return.
func TestRotateDaemonStops(t *testing.T) {
	d := startDaemon(t, "50ms", []string{"key", "policy", "k1", "--every", "1ns"})
	waitForMetric(t, d.addr, `keystack_rotation_rotations_total{key="k1",outcome="success"}`, d.done)
	d.cancel()
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("daemon returned %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop after cancellation")
	}
	for _, want := range []string{`"msg":"rotation daemon started"`, `"msg":"rotation daemon stopping"`} {
		if !strings.Contains(d.logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, d.logs.String())
		}
	}
	if _, err := net.DialTimeout("tcp", d.addr, time.Second); err == nil {
		t.Error("metrics server still listening after the daemon stopped")
	}
}

// waitForMetric polls /metrics until a line starts with series, failing
// if the daemon exits first.
func waitForMetric(t *testing.T, addr, series string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("daemon exited early: %v", err)
		default:
		}
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, line := range strings.Split(string(body), "\n") {
				if strings.HasPrefix(line, series) {
					return
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s in /metrics", series)
}

// TestRotateDaemonRetires: "rotate daemon" retires a superseded version
// once (its metrics count one retirement however many passes follow), logs
// it, and never rotates a key that has a retirement but no period.
func TestRotateDaemonRetires(t *testing.T) {
	d := startDaemon(t, "20ms", []string{"key", "rotate", "k1"},
		[]string{"key", "policy", "k1", "--every", "0", "--retire-after", "1ns"})
	ctx := context.Background()
	const retired = `keystack_rotation_retirements_total{key="k1",outcome="success"} 1`
	waitForMetric(t, d.addr, retired, d.done)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) { // four passes later, still one
		if n := scrapeValue(t, d.addr, `keystack_rotation_runs_total{outcome="ok"}`); n >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon made fewer than 5 passes in 30 s")
		}
	}
	waitForMetric(t, d.addr, retired, d.done)
	d.cancel()
	if err := <-d.done; err != nil {
		t.Fatalf("daemon returned %v, want nil", err)
	}
	if n := strings.Count(d.logs.String(), `"msg":"key version retired"`); n != 1 {
		t.Errorf("%d retirement log lines, want 1:\n%s", n, d.logs.String())
	}
	var out bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, io.Discard
	if err := app.RunContext(ctx, []string{"keystack", "--home", d.home, "key", "show", "k1"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"v1  disabled", "v2  enabled", "retired: superseded for more than 1ns"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("key show lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "v3") {
		t.Errorf("a key without a period was rotated:\n%s", out.String())
	}
}

// scrapeValue returns the value of series in /metrics, or -1 when absent.
func scrapeValue(t *testing.T, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return n
		}
	}
	return -1
}

// TestNewLogger: rotate's --log-format json writes JSON lines, text logfmt, both from INFO up.
func TestNewLogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	newLogger(&buf, true).Error("rotation pass finished", "failed", 1)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("JSON logger wrote %q: %v", buf.String(), err)
	}
	if rec["msg"] != "rotation pass finished" || rec["failed"] != 1.0 || rec["level"] != "ERROR" {
		t.Errorf("JSON logger wrote %v", rec)
	}
	buf.Reset()
	newLogger(&buf, true).Debug("hidden")
	if buf.Len() != 0 {
		t.Errorf("logger at INFO wrote a debug line: %q", buf.String())
	}
	newLogger(&buf, false).Info("x", "key", "k")
	if got := buf.String(); !strings.Contains(got, "msg=x key=k") {
		t.Errorf("text logger wrote %q", got)
	}
}
