package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// maxRequest bounds a request body the transport buffers to replay it:
// the server refuses bodies over 64 KiB anyway.
const maxRequest = 64 << 10

// idempotentOps are the operations retried after they reached a server
// that did not answer: repeating them changes nothing the caller can tell
// from one call (a data-key operation returns another fresh key; PutPolicy
// writes the same document).
var idempotentOps = map[string]bool{
	"Encrypt": true, "Decrypt": true, "ReEncrypt": true, "GenerateDataKey": true,
	"GenerateDataKeyWithoutPlaintext": true, "GenerateRandom": true, "DescribeKey": true, "ListKeys": true,
	"ListAliases": true, "GetKeyRotationStatus": true, "ListKeyRotations": true, "ListResourceTags": true,
	"EnableKey": true, "DisableKey": true, "EnableKeyRotation": true, "DisableKeyRotation": true,
	"TagResource": true, "UntagResource": true,
	"GetPolicy": true, "PutPolicy": true, "SimulatePolicy": true, "VerifyAudit": true, "ListCredentials": true,
	"ShowAudit": true, "DecryptDataKey": true,
}

// idempotent reports whether the operation named by an X-Amz-Target
// value ("TrentService.Decrypt", "KeystackAdmin.GetPolicy") is retried on
// another endpoint after it reached a server that did not answer.
func idempotent(target string) bool {
	_, op, _ := strings.Cut(target, ".")
	return idempotentOps[op]
}

// failover is the http.RoundTripper of a Client: it sends each request to
// the endpoints in turn, signing it for each, as the package doc says.
type failover struct {
	eps     []endpoint
	rts     []http.RoundTripper
	creds   *aws.Credentials
	region  string
	signer  *v4.Signer
	rounds  int
	backoff time.Duration
	first   atomic.Int32 // the endpoint that last answered
	quota   atomic.Int64 // throttle retries left to spend (retryQuotaMax at first)
	now     func() time.Time

	mu     sync.Mutex
	closed bool
}

func (f *failover) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := readBody(req)
	if err != nil {
		return nil, err
	}
	target := req.Header.Get("X-Amz-Target")
	_, op, _ := strings.Cut(target, ".")
	idem := idempotent(target)
	ue := &UnavailableError{Op: op}
	var last *http.Response
	start := int(f.first.Load())
	for round := 0; round < f.rounds; round++ {
		if round > 0 {
			if err := sleep(req.Context(), f.backoff<<(round-1)); err != nil {
				return nil, errors.Join(ue, err)
			}
		}
		for i := range f.eps {
			n := (start + i) % len(f.eps)
			resp, sent, err := f.tryThrottled(req, n, body)
			switch {
			case err == nil && (resp.StatusCode < 500 || !idem):
				f.first.Store(int32(n))
				closeResp(last)
				return resp, nil
			case err == nil:
				closeResp(last)
				last = resp
				ue.Attempts = append(ue.Attempts, fmt.Errorf("%s: HTTP %d", f.eps[n].url, resp.StatusCode))
			case req.Context().Err() != nil:
				closeResp(last)
				return nil, err
			default:
				ue.Attempts = append(ue.Attempts, fmt.Errorf("%s: %w", f.eps[n].url, err))
				if sent && !idem {
					ue.MaybeApplied = true
					closeResp(last)
					return nil, ue
				}
			}
		}
	}
	if last != nil {
		return last, nil // the server's own error answer says most
	}
	if te := asTrustError(ue); te != nil {
		return nil, te
	}
	return nil, ue
}

// Throttle retries: a ThrottlingException answer is sent before the
// server acts (it checks the caller's rate before dispatching), so every
// operation, idempotent or not, is retried on the same endpoint up to
// throttleRetries times, pausing a jittered, doubling delay (the AWS
// SDKs' standard mode backs off with jitter too): the i-th pause (i from
// 0) is drawn in [throttleBase<<i / 2, throttleBase<<i), so four pauses
// take 1.5 s to 3 s in all, within the default Timeout.
//
// The retries draw on one budget per Client, as the AWS SDKs' standard
// retry mode keeps a retry quota: each costs throttleRetryCost of
// retryQuotaMax, and an answer that needed no retry gives one back. Many
// calls throttled at once (a fleet over its rate) thus stop multiplying
// the load by five: once the budget is spent, a throttled call fails at
// once, until answers refill it.
const (
	throttleRetries   = 4
	throttleBase      = 200 * time.Millisecond
	retryQuotaMax     = 500
	throttleRetryCost = 5
)

// tryThrottled is try, retrying answers that say the server throttled
// the request before acting. When the retries run out or the call's
// context ends, the last throttle answer is returned.
func (f *failover) tryThrottled(req *http.Request, n int, body []byte) (*http.Response, bool, error) {
	for i := 0; ; i++ {
		resp, sent, err := f.try(req, n, body)
		if err == nil && i == 0 && !throttled(resp) {
			f.refundRetry()
		}
		if err != nil || i == throttleRetries || !throttled(resp) || !f.spendRetry() {
			return resp, sent, err
		}
		d := throttleBase << i
		d = d/2 + time.Duration(rand.Int64N(int64(d/2)))
		if sleep(req.Context(), d) != nil {
			return resp, sent, nil
		}
		closeResp(resp)
	}
}

// spendRetry takes one retry's cost from the budget, or reports that it
// is spent.
func (f *failover) spendRetry() bool {
	for {
		q := f.quota.Load()
		if q < throttleRetryCost {
			return false
		}
		if f.quota.CompareAndSwap(q, q-throttleRetryCost) {
			return true
		}
	}
}

// refundRetry gives one back to the budget, up to retryQuotaMax.
func (f *failover) refundRetry() {
	for {
		q := f.quota.Load()
		if q >= retryQuotaMax || f.quota.CompareAndSwap(q, q+1) {
			return
		}
	}
}

// throttled reports whether resp is a ThrottlingException answer.
func throttled(resp *http.Response) bool {
	return (resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusTooManyRequests) &&
		resp.Header.Get("X-Amzn-ErrorType") == "ThrottlingException"
}

// try sends one attempt to endpoint n; sent reports whether any of the
// request reached the connection.
func (f *failover) try(req *http.Request, n int, body []byte) (*http.Response, bool, error) {
	ep := f.eps[n]
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteHeaderField: func(string, []string) { wrote.Store(true) }}
	ctx := httptrace.WithClientTrace(req.Context(), trace)
	r := req.Clone(ctx)
	scheme := ep.scheme
	if scheme == "unix" {
		scheme = "http"
	}
	r.URL.Scheme, r.URL.Host, r.Host = scheme, ep.host, ep.host
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256"} {
		r.Header.Del(h)
	}
	if f.creds != nil {
		sum := sha256.Sum256(body)
		if err := f.signer.SignHTTP(ctx, *f.creds, r, hex.EncodeToString(sum[:]), "kms", f.region, f.now()); err != nil {
			return nil, false, fmt.Errorf("signing the request: %w", err)
		}
	}
	resp, err := f.rts[n].RoundTrip(r)
	return resp, wrote.Load(), err
}

func readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil {
		return nil, nil
	}
	defer req.Body.Close()
	b, err := io.ReadAll(io.LimitReader(req.Body, maxRequest+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxRequest {
		return nil, fmt.Errorf("%w: request body over %d bytes", ErrInvalidConfig, maxRequest)
	}
	return b, nil
}

func closeResp(r *http.Response) {
	if r != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<16))
		r.Body.Close()
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(min(d, 2*time.Second))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// close closes idle connections of every endpoint.
func (f *failover) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	for _, rt := range f.rts {
		if t, ok := rt.(*http.Transport); ok {
			t.CloseIdleConnections()
		}
	}
}
