package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/keystack/keystack/internal/clientenv"
	"github.com/keystack/keystack/internal/safetext"
)

// Defaults of Config (Region and Timeout: clientenv.DefaultRegion, 10 s).
const (
	defaultAttemptTimeout = 5 * time.Second
	defaultRounds         = 2
	defaultBackoff        = 100 * time.Millisecond
)

// placeholderEndpoint is the base URL the AWS SDK is given; the failover
// transport replaces its scheme and host with each real endpoint's.
const placeholderEndpoint = "http://keystack-server.invalid"

// maxResponse bounds an answer body read from the server.
const maxResponse = 8 << 20

// Config configures a Client. Secrets are never taken from flags: the
// CLI reads SecretAccessKey from the environment.
type Config struct {
	// Endpoints are the server's addresses, tried in order:
	// unix:///path (its Unix socket), https://host:port, or
	// http://host:port on a loopback address only (tests). An item may
	// itself be a comma-separated list, as KEYSTACK_SERVER is. New fails
	// with ErrInvalidConfig for anything else, quoting no user part,
	// query or fragment.
	Endpoints []string
	// Region is the SigV4 scope: the server's --region (default us-east-1).
	Region string
	// AccessKeyID and SecretAccessKey sign every request with SigV4
	// (an access key from `keystack server credentials create`). Both or
	// neither.
	AccessKeyID, SecretAccessKey string
	// CAFile verifies https endpoints (PEM); default the system roots.
	CAFile string
	// CertFile and KeyFile are the TLS client certificate (mutual TLS).
	CertFile, KeyFile string
	// Timeout bounds each call, failover and retries included (default
	// 10 s); AttemptTimeout bounds the wait for one endpoint's answer
	// (default 5 s, at most Timeout).
	Timeout, AttemptTimeout time.Duration
	// Rounds is how many passes over the endpoints a call may make
	// (default 2); Backoff the pause before the second pass, doubled for
	// each next one (default 100 ms).
	Rounds  int
	Backoff time.Duration
}

// Client is a connection to a key server, safe for concurrent use.
type Client struct {
	cfg  Config
	tr   *failover
	http *http.Client
	kms  *kms.Client
	aws  aws.Config
}

// New checks cfg and returns a Client. It makes no request.
func New(cfg Config) (*Client, error) {
	eps, err := parseEndpoints(cfg.Endpoints)
	if err != nil {
		return nil, err
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	tlsConf, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	f := &failover{eps: eps, region: cfg.Region, signer: v4.NewSigner(), rounds: cfg.Rounds,
		backoff: cfg.Backoff, now: time.Now}
	f.quota.Store(retryQuotaMax)
	for _, ep := range eps {
		f.rts = append(f.rts, ep.roundTripper(tlsConf, cfg.AttemptTimeout))
	}
	if cfg.AccessKeyID != "" {
		f.creds = &aws.Credentials{AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey}
	}
	hc := &http.Client{Transport: f}
	ac := aws.Config{Region: cfg.Region, Credentials: aws.AnonymousCredentials{}, HTTPClient: hc,
		BaseEndpoint: aws.String(placeholderEndpoint), Retryer: func() aws.Retryer { return aws.NopRetryer{} }}
	return &Client{cfg: cfg, tr: f, http: hc, aws: ac, kms: kms.NewFromConfig(ac)}, nil
}

func (cfg *Config) defaults() error {
	if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
		return fmt.Errorf("%w: an access key ID needs its secret access key, and the reverse", ErrInvalidConfig)
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return fmt.Errorf("%w: a client certificate needs its key file, and the reverse", ErrInvalidConfig)
	}
	if cfg.Region == "" {
		cfg.Region = clientenv.DefaultRegion
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = clientenv.DefaultTimeout
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = min(defaultAttemptTimeout, cfg.Timeout)
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = defaultRounds
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = defaultBackoff
	}
	return nil
}

// tlsConfig is the TLS client configuration of https endpoints.
func (cfg *Config) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: server CA: %v", ErrInvalidConfig, err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: server CA %s: no PEM certificate in it", ErrInvalidConfig, cfg.CAFile)
		}
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: client certificate: %v", ErrInvalidConfig, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.tr.close()
	return nil
}

// admin calls KeystackAdmin.op with in as its JSON body and decodes the
// answer into out.
func (c *Client) admin(ctx context.Context, op string, in, out any) error {
	return c.call(ctx, "KeystackAdmin."+op, in, out)
}

func (c *Client) call(ctx context.Context, target string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, placeholderEndpoint+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target)
	resp, err := c.http.Do(req)
	if err != nil {
		return unwrapURLError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return fmt.Errorf("%w: reading the answer to %s: %v", ErrUnavailable, target, err)
	}
	_, op, _ := strings.Cut(target, ".")
	if len(data) > maxResponse {
		return fmt.Errorf("keystack server: %s: answer larger than %d bytes", op, maxResponse)
	}
	if resp.StatusCode != http.StatusOK {
		return apiError(op, resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("keystack server: %s: malformed answer: %v", op, err)
	}
	return nil
}

// apiError decodes a KMS JSON 1.1 error answer.
func apiError(op string, status int, data []byte) error {
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(data, &e)
	code := e.Type
	if i := strings.LastIndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	if code == "" {
		code = fmt.Sprintf("HTTP %d", status)
	}
	return &APIError{Op: op, Code: code, Message: e.Message, Status: status}
}

// maxMessage bounds the server's message an error repeats.
const maxMessage = 1024

// printable is s bounded to n bytes and safe to print (safetext.Bounded).
func printable(s string, n int) string { return safetext.Bounded(s, n) }

// unwrapURLError drops net/http's "Post \"URL\":" wrapper, which names
// the placeholder URL, keeping what the transport said.
func unwrapURLError(err error) error {
	if f := endpointsFailure(err); f != nil {
		return f
	}
	return err
}

// endpointsFailure returns the UnavailableError or trustError in err (no
// endpoint answered), without what wraps it, or nil.
func endpointsFailure(err error) error {
	var ue *UnavailableError
	var te *trustError
	switch {
	case errors.As(err, &ue):
		return ue
	case errors.As(err, &te):
		return te
	}
	return nil
}
