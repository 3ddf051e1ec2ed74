package awskms

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Retry defaults: throttling and 5xx answers are retried with jittered
// exponential backoff, but a persistent failure gives up after at most
// about (MaxAttempts-1) × MaxBackoff, and never after the call's deadline.
const (
	defaultMaxAttempts = 5
	defaultMaxBackoff  = 2 * time.Second
	// DefaultTimeout bounds each KMS call, its retries included.
	DefaultTimeout = 10 * time.Second
	// downHold is how long a Region whose KMS did not answer is failed at
	// once instead of waiting out another timeout: a command decrypting
	// many EDKs or files waits for an unreachable Region once, not per call.
	downHold = time.Minute
)

// clients holds one KMS client per Region, created on first use and shared
// by every keyring of a Backend.
type clients struct {
	cfg         aws.Config
	endpoint    string
	maxAttempts int
	maxBackoff  time.Duration
	timeout     time.Duration

	mu   sync.Mutex
	m    map[string]*kms.Client
	down map[string]downRegion
}

// downRegion records a Region whose KMS did not answer.
type downRegion struct {
	until time.Time
	err   *noAnswerError
}

// loadClients resolves the AWS configuration: opts.Config when set,
// otherwise config.LoadDefaultConfig (environment, shared config and
// credentials files with profiles, SSO, container and EC2 instance roles).
// Without opts.Endpoint the SDK itself honours AWS_ENDPOINT_URL_KMS.
func loadClients(ctx context.Context, opts *Options) (*clients, error) {
	var cfg aws.Config
	if opts.Config != nil {
		cfg = opts.Config.Copy()
	} else {
		var lo []func(*config.LoadOptions) error
		if opts.Region != "" {
			lo = append(lo, config.WithRegion(opts.Region))
		}
		var err error
		if cfg, err = config.LoadDefaultConfig(ctx, lo...); err != nil {
			return nil, fmt.Errorf("awskms: loading AWS configuration: %w", err)
		}
	}
	c := &clients{cfg: cfg, endpoint: opts.Endpoint, maxAttempts: opts.MaxAttempts,
		maxBackoff: opts.MaxBackoff, timeout: opts.Timeout, m: map[string]*kms.Client{}, down: map[string]downRegion{}}
	if c.maxAttempts <= 0 {
		// AWS_MAX_ATTEMPTS or the profile's max_attempts, as every AWS SDK.
		c.maxAttempts = cmp.Or(max(cfg.RetryMaxAttempts, 0), defaultMaxAttempts)
	}
	if c.maxBackoff <= 0 {
		c.maxBackoff = defaultMaxBackoff
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	return c, nil
}

// get returns the client for region, creating it once.
func (c *clients) get(region string) *kms.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.m[region]; ok {
		return cl
	}
	cl := kms.NewFromConfig(c.cfg, func(o *kms.Options) {
		o.Region = region
		if c.endpoint != "" {
			o.BaseEndpoint = aws.String(c.endpoint)
		}
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = c.maxAttempts
			so.MaxBackoff = c.maxBackoff
		})
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			if err := st.Initialize.Add(c.deadline(region), middleware.Before); err != nil {
				return err
			}
			return st.Deserialize.Add(recordAttempt, middleware.Before)
		})
	})
	c.m[region] = cl
	return cl
}

// deadline is the first middleware of every KMS call to region: it fails
// at once while the Region is known down, gives the call (retries
// included) c.timeout, and marks the Region down when KMS did not answer.
// A caller's own cancellation is passed through and marks nothing.
func (c *clients) deadline(region string) middleware.InitializeMiddleware {
	return middleware.InitializeMiddlewareFunc("keystackDeadline", func(ctx context.Context, in middleware.InitializeInput,
		next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		if err := c.isDown(region); err != nil {
			return middleware.InitializeOutput{}, middleware.Metadata{}, err
		}
		cctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		last := new(attemptErr)
		out, md, err := next.HandleInitialize(context.WithValue(cctx, attemptErrKey{}, last), in)
		if err == nil || ctx.Err() != nil {
			return out, md, err
		}
		if cause, ok := noAnswer(err, last.get(), cctx); ok {
			na := &noAnswerError{Region: region, Timeout: c.timeout, TimedOut: cause == nil, Err: err}
			if cause != nil {
				na.Err = cause
			}
			c.markDown(region, na)
			return out, md, na
		}
		return out, md, err
	})
}

// noAnswer reports whether a call that failed with err got no answer
// from KMS, and the transport error of its last attempt when that says
// more than "no answer in time" (a refused connection whose retries ran
// into the deadline).
func noAnswer(err, lastAttempt error, cctx context.Context) (cause error, ok bool) {
	var se *smithyhttp.RequestSendError
	for _, e := range []error{err, lastAttempt} {
		if errors.As(e, &se) && !errors.Is(se, context.DeadlineExceeded) && !errors.Is(se, context.Canceled) {
			return se, true
		}
	}
	if errors.Is(cctx.Err(), context.DeadlineExceeded) || errors.As(err, &se) {
		return nil, true
	}
	return nil, false
}

func (c *clients) isDown(region string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.down[region]
	if !ok || time.Now().After(d.until) {
		return nil
	}
	return &noAnswerError{Region: region, Timeout: c.timeout, TimedOut: d.err.TimedOut, Earlier: true, Err: d.err.Err}
}

func (c *clients) markDown(region string, err *noAnswerError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down[region] = downRegion{until: time.Now().Add(downHold), err: err}
}

// attemptErr holds the error of a call's last attempt: the retry loop
// returns only its own, which after the deadline is just "deadline exceeded".
type attemptErr struct {
	mu  sync.Mutex
	err error
}

func (a *attemptErr) get() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

type attemptErrKey struct{}

// recordAttempt runs once per attempt, inside the retry loop.
var recordAttempt = middleware.DeserializeMiddlewareFunc("keystackAttemptErr", func(ctx context.Context,
	in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
	out, md, err := next.HandleDeserialize(ctx, in)
	if a, ok := ctx.Value(attemptErrKey{}).(*attemptErr); ok && err != nil {
		a.mu.Lock()
		a.err = err
		a.mu.Unlock()
	}
	return out, md, err
})
