package rotation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"time"
)

// Errors returned by hooks, one per failure class.
var (
	// ErrHookFailed is returned when a hook ran but reported failure: a
	// command's non-zero exit, a webhook's non-2xx status or a redirect.
	ErrHookFailed = errors.New("rotation: hook failed")
	// ErrHookTimeout is returned when a hook did not finish within its
	// timeout. It also matches context.DeadlineExceeded.
	ErrHookTimeout = errors.New("rotation: hook timed out")
)

// Default hook timeouts, used when a hook's Timeout is 0.
const (
	defaultCommandTimeout = 30 * time.Second
	defaultWebhookTimeout = 10 * time.Second
	// hookOutputLimit bounds what is kept of a command's output, and what is
	// read of a webhook's response.
	hookOutputLimit = 4 << 10
)

// hook is told the outcome of one rotation attempt. Implementations must
// return by the time ctx is done.
type hook interface {
	Run(ctx context.Context, r result) error
}

// result describes one rotation attempt. It never holds key material.
type result struct {
	Key        string
	OldVersion int
	NewVersion int // 0 when the attempt failed before a version was made
	Time       time.Time
	Err        error // nil on success
}

// hooks are a key's hooks, from its rotation settings: OnSuccess and
// OnFailure, when set, are told about each rotation attempt.
type hooks struct{ OnSuccess, OnFailure hook }

// notify runs h.OnSuccess when r.Err is nil and h.OnFailure otherwise; a
// missing hook is a no-op.
func (h hooks) notify(ctx context.Context, r result) error {
	run := h.OnSuccess
	if r.Err != nil {
		run = h.OnFailure
	}
	if run == nil {
		return nil
	}
	return run.Run(ctx, r)
}

// fields is the result as hooks see it: environment variables for commands
// (upper-cased, KEYSTACK_ prefix) and the JSON body for webhooks.
type fields struct {
	Event      string `json:"event"` // "success" or "failure"
	Key        string `json:"key"`
	OldVersion int    `json:"old_version"`
	NewVersion int    `json:"new_version"`
	Time       string `json:"time"` // RFC 3339, UTC
	Error      string `json:"error,omitempty"`
}

func resultFields(r result) fields {
	f := fields{Event: "success", Key: r.Key, OldVersion: r.OldVersion, NewVersion: r.NewVersion,
		Time: r.Time.UTC().Format(time.RFC3339Nano)}
	if r.Err != nil {
		f.Event, f.Error = "failure", r.Err.Error()
	}
	return f
}

// timeoutErr turns a deadline into ErrHookTimeout (still matching
// context.DeadlineExceeded) and leaves other errors alone.
func timeoutErr(ctx context.Context, what string, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s: %w", ErrHookTimeout, what, context.DeadlineExceeded)
	}
	return err
}

// commandHook runs a program with the result in its environment:
// KEYSTACK_EVENT (success or failure), KEYSTACK_KEY, KEYSTACK_OLD_VERSION,
// KEYSTACK_NEW_VERSION, KEYSTACK_TIME (RFC 3339) and KEYSTACK_ERROR. The
// program does not inherit keystack's environment, which may hold
// passphrases or credentials: it gets only those variables, PATH, and Env.
// No shell is involved; Path is run with Args as given.
type commandHook struct {
	Path    string
	Args    []string
	Env     []string      // extra "NAME=value" entries
	Timeout time.Duration // 0 means 30 seconds
}

// commandError is a command hook's failure. It matches ErrHookFailed; Output
// holds up to the last 4 KiB of the program's combined output and is kept
// out of Error, since the program decides what it prints.
type commandError struct {
	Path     string
	ExitCode int
	Output   []byte
}

func (e *commandError) Error() string {
	return fmt.Sprintf("%v: command %s exited with status %d", ErrHookFailed, e.Path, e.ExitCode)
}

// Is makes errors.Is(err, ErrHookFailed) true.
func (e *commandError) Is(target error) bool { return target == ErrHookFailed }

// Run implements hook. It returns a *commandError for a non-zero exit and
// ErrHookTimeout when the program outlives the timeout (it is then killed).
func (h *commandHook) Run(ctx context.Context, r result) error {
	ctx, cancel := context.WithTimeout(ctx, orDefault(h.Timeout, defaultCommandTimeout))
	defer cancel()
	cmd := exec.CommandContext(ctx, h.Path, h.Args...)
	cmd.Env = h.env(r)
	cmd.WaitDelay = time.Second // don't wait forever on pipes a killed child's children hold
	out := &tailBuffer{max: hookOutputLimit}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return timeoutErr(ctx, "command "+h.Path, ctx.Err())
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return &commandError{Path: h.Path, ExitCode: exit.ExitCode(), Output: out.Bytes()}
	}
	return fmt.Errorf("rotation: hook command %s: %w", h.Path, err)
}

func (h *commandHook) env(r result) []string {
	f := resultFields(r)
	env := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"KEYSTACK_EVENT=" + f.Event,
		"KEYSTACK_KEY=" + f.Key,
		"KEYSTACK_OLD_VERSION=" + strconv.Itoa(f.OldVersion),
		"KEYSTACK_NEW_VERSION=" + strconv.Itoa(f.NewVersion),
		"KEYSTACK_TIME=" + f.Time,
		"KEYSTACK_ERROR=" + f.Error,
	}
	return append(env, h.Env...) // later entries win in os/exec
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte { return bytes.Clone(t.buf) }

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// webhookHook POSTs the result as JSON to URL:
//
//	{"event":"success","key":"…","old_version":1,"new_version":2,"time":"…","error":"…"}
//
// Any 2xx status is success. Redirects are refused rather than followed, so
// Header (which may carry a bearer token) goes only to URL's host. Errors
// name only URL's scheme and host: webhook URLs often embed a secret.
type webhookHook struct {
	URL     string
	Header  http.Header   // extra request headers, such as Authorization
	Timeout time.Duration // 0 means 10 seconds
	Client  *http.Client  // nil means a client that refuses redirects
}

// Run implements hook.
func (h *webhookHook) Run(ctx context.Context, r result) error {
	u, err := url.Parse(h.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%w: webhook URL must be an absolute http(s) URL", ErrHookFailed)
	}
	where := u.Scheme + "://" + u.Host
	body, err := json.Marshal(resultFields(r))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, orDefault(h.Timeout, defaultWebhookTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: webhook %s: bad request", ErrHookFailed, where)
	}
	for k, vs := range h.Header {
		req.Header[k] = append([]string(nil), vs...)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client().Do(req)
	if err != nil {
		return timeoutErr(ctx, "webhook "+where, redactURL(err, where))
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, hookOutputLimit)) // let the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%w: webhook %s answered %s", ErrHookFailed, where, resp.Status)
	}
	return nil
}

func (h *webhookHook) client() *http.Client {
	if h.Client != nil {
		return h.Client
	}
	return noRedirectClient
}

var noRedirectClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// redactURL replaces the full URL that net/http puts in its errors.
func redactURL(err error, where string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("rotation: webhook %s: %s: %w", where, ue.Op, ue.Err)
	}
	return err
}
