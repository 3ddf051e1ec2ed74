package awskms

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// Retry defaults: throttling and 5xx answers are retried with jittered
// exponential backoff, but a persistent failure gives up after at most
// about (MaxAttempts-1) × MaxBackoff.
const (
	defaultMaxAttempts = 5
	defaultMaxBackoff  = 2 * time.Second
)

// clients holds one KMS client per Region, created on first use and shared
// by every keyring of a Backend.
type clients struct {
	cfg         aws.Config
	endpoint    string
	maxAttempts int
	maxBackoff  time.Duration

	mu sync.Mutex
	m  map[string]*kms.Client
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
		maxBackoff: opts.MaxBackoff, m: map[string]*kms.Client{}}
	if c.maxAttempts <= 0 {
		c.maxAttempts = defaultMaxAttempts
	}
	if c.maxBackoff <= 0 {
		c.maxBackoff = defaultMaxBackoff
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
	})
	c.m[region] = cl
	return cl
}
