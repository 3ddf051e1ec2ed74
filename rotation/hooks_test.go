package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	okResult   = result{Key: "payments", OldVersion: 3, NewVersion: 4, Time: t0}
	failResult = result{Key: "payments", OldVersion: 3, Time: t0, Err: errors.New("kms unreachable")}
)

func shHook(t *testing.T, script string) *commandHook {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("this test needs sh: %v", err)
	}
	return &commandHook{Path: sh, Args: []string{"-c", script}, Timeout: 10 * time.Second}
}

func TestCommandHookEnvironment(t *testing.T) {
	t.Setenv("KEYSTACK_PASSPHRASE", "must-not-leak")
	out := filepath.Join(t.TempDir(), "env")
	h := shHook(t, `printf '%s|%s|%s|%s|%s|%s|%s|%s' "$KEYSTACK_EVENT" "$KEYSTACK_KEY" "$KEYSTACK_OLD_VERSION" `+
		`"$KEYSTACK_NEW_VERSION" "$KEYSTACK_TIME" "$KEYSTACK_ERROR" "$KEYSTACK_PASSPHRASE" "$EXTRA" > "$OUT"`)
	h.Env = []string{"OUT=" + out, "EXTRA=x"}
	for _, tc := range []struct {
		r    result
		want string
	}{
		{okResult, "success|payments|3|4|2025-03-01T12:00:00Z|||x"},
		{failResult, "failure|payments|3|0|2025-03-01T12:00:00Z|kms unreachable||x"},
	} {
		if err := h.Run(context.Background(), tc.r); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("hook saw %q, want %q", got, tc.want)
		}
	}
}

func TestCommandHookFailure(t *testing.T) {
	h := shHook(t, `echo "rotate hook broke" >&2; exit 3`)
	err := h.Run(context.Background(), okResult)
	var ce *commandError
	if !errors.Is(err, ErrHookFailed) || !errors.As(err, &ce) || ce.ExitCode != 3 {
		t.Fatalf("err = %v, want a *commandError with status 3", err)
	}
	if !strings.Contains(string(ce.Output), "rotate hook broke") || strings.Contains(err.Error(), "rotate hook broke") {
		t.Errorf("output %q should be kept in Output and out of Error()", ce.Output)
	}
	missing := &commandHook{Path: filepath.Join(t.TempDir(), "no-such-program")}
	if err := missing.Run(context.Background(), okResult); err == nil {
		t.Error("missing program: no error")
	}
}

func TestCommandHookTimeout(t *testing.T) {
	h := shHook(t, `exec sleep 30`)
	h.Timeout = 50 * time.Millisecond
	start := time.Now()
	err := h.Run(context.Background(), okResult)
	if !errors.Is(err, ErrHookTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrHookTimeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("timed-out hook returned after %v", d)
	}
}

func TestWebhook(t *testing.T) {
	type got struct {
		method, ctype, auth, path string
		body                      fields
	}
	seen := make(chan got, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var g got
		g.method, g.ctype, g.auth, g.path = r.Method, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), r.URL.Path
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&g.body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		seen <- g
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	h := &webhookHook{URL: srv.URL + "/hooks/rotated", Header: http.Header{"Authorization": {"Bearer t"}}}
	p := hooks{OnSuccess: h, OnFailure: h}
	for _, r := range []result{okResult, failResult} {
		if err := p.notify(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		g := <-seen
		want := resultFields(r)
		if g.method != http.MethodPost || g.ctype != "application/json" || g.auth != "Bearer t" ||
			g.path != "/hooks/rotated" || g.body != want {
			t.Errorf("server saw %+v, want POST JSON %+v", g, want)
		}
	}
}

func TestWebhookFailures(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/fail/", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusInternalServerError) })
	mux.HandleFunc("/redirect/", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusTemporaryRedirect) })
	mux.HandleFunc("/slow/", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(release)
	const secret = "T0KEN-in-path"
	for _, tc := range []struct {
		path    string
		timeout time.Duration
		want    error
	}{
		{"/fail/", 0, ErrHookFailed},
		{"/redirect/", 0, ErrHookFailed},
		{"/slow/", 50 * time.Millisecond, ErrHookTimeout},
	} {
		h := &webhookHook{URL: srv.URL + tc.path + secret + "?sig=" + secret, Timeout: tc.timeout}
		err := h.Run(context.Background(), okResult)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.path, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error leaks the URL's secret: %v", tc.path, err)
		}
	}
	// A closed server: a transport error, still without the secret.
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL + "/" + secret
	dead.Close()
	err := (&webhookHook{URL: url}).Run(context.Background(), okResult)
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("dead server: err = %v", err)
	}
	if err := (&webhookHook{URL: "ftp://x/y"}).Run(context.Background(), okResult); !errors.Is(err, ErrHookFailed) {
		t.Errorf("ftp URL: err = %v", err)
	}
}

func TestNotifyPicksHook(t *testing.T) {
	var calls []string
	rec := func(name string) hook {
		return hookFunc(func(_ context.Context, r result) error {
			calls = append(calls, fmt.Sprint(name, r.Err != nil))
			return nil
		})
	}
	p := hooks{OnSuccess: rec("ok"), OnFailure: rec("fail")}
	p.notify(context.Background(), okResult)
	p.notify(context.Background(), failResult)
	if err := (hooks{}).notify(context.Background(), failResult); err != nil {
		t.Errorf("no hooks: %v", err)
	}
	if got := strings.Join(calls, ","); got != "okfalse,failtrue" {
		t.Errorf("calls = %s", got)
	}
}

type hookFunc func(context.Context, result) error

func (f hookFunc) Run(ctx context.Context, r result) error { return f(ctx, r) }
