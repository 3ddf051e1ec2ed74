package xks

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrConfig is returned for an XKS configuration that cannot be served.
var ErrConfig = errors.New("xks: invalid configuration")

// Config is the XKS proxy configuration (the JSON file --xks-config
// names).
type Config struct {
	// HealthKey is the keystack key the health check seals and opens data
	// with: a dedicated test key, as the specification recommends, on the
	// same backend as the served keys.
	HealthKey string `json:"healthKey"`
	// HealthKeys are more health keys, one on each further backend (a
	// second token, local keys): each is a fleet entry of the health
	// response with its own status.
	HealthKeys []string `json:"healthKeys,omitempty"`
	// FleetSize is the number of proxies behind the endpoint (default 1).
	FleetSize int `json:"fleetSize,omitempty"`
	// EKMVendor and EKMModel describe the key backend in health responses.
	EKMVendor string `json:"ekmVendor,omitempty"`
	EKMModel  string `json:"ekmModel,omitempty"`
	// BackendTimeoutMs bounds, in milliseconds, the key backend work of
	// one request (default 100, at most 250: AWS KMS gives up after
	// 250 ms); a request past it gets DependencyTimeoutException (503).
	BackendTimeoutMs int `json:"backendTimeoutMs,omitempty"`
	// MaxBackendCalls bounds the key backend calls in progress over all
	// prefixes (default 64); a request that gets no slot within its
	// BackendTimeoutMs gets DependencyTimeoutException too.
	MaxBackendCalls int      `json:"maxBackendCalls,omitempty"`
	Prefixes        []Prefix `json:"prefixes"`
}

func (c *Config) backendTimeout() time.Duration {
	if c.BackendTimeoutMs <= 0 {
		return defaultBackendTimeout
	}
	return time.Duration(c.BackendTimeoutMs) * time.Millisecond
}

func (c *Config) maxCalls() int {
	if c.MaxBackendCalls <= 0 {
		return defaultBackendCalls
	}
	return c.MaxBackendCalls
}

// Prefix is one path prefix: an isolated tenant with its own credentials,
// keys and principal.
type Prefix struct {
	// Path is the optional path prefix before /kms/xks/v1 ("" or "/acme").
	Path string `json:"path"`
	// Principal is the keystack principal key operations are decided and
	// audited for (default "service:xks").
	Principal string `json:"principal,omitempty"`
	// Credentials are the SigV4 credentials AWS KMS signs with; two let
	// them rotate without downtime.
	Credentials []Credential `json:"credentials"`
	// Keys is the allow-list of keystack key names served as externalKeyId.
	Keys []string `json:"keys"`
	// MTLS, when set, requires a client certificate.
	MTLS *MTLS `json:"mtls,omitempty"`
	// RateLimit is the prefix's quota in requests a second (token bucket
	// of RateBurst, by default the rate): an authenticated request above
	// it gets ThrottlingException (HTTP 429). 0 means no limit. AWS KMS
	// itself holds an external key store to 1,800 requests a second by
	// default.
	RateLimit float64 `json:"rateLimit,omitempty"`
	RateBurst int     `json:"rateBurst,omitempty"`
}

// Credential is an access key ID and secret access key in the formats
// Appendix A of the specification requires.
type Credential struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

// MTLS requires a TLS client certificate chained to the CA in CAFile whose
// subject common name is SubjectCN (AWS KMS presents
// CN=cks.kms.<Region>.amazonaws.com).
type MTLS struct {
	CAFile    string `json:"caFile"`
	SubjectCN string `json:"subjectCommonName"`
	pool      *x509.CertPool
}

// The patterns compile on first use: this package is linked into every
// keystack command, and compiling them at start-up (bounded repetitions
// make large programs) cost each command 0.4 ms and 178 KB.
var (
	accessKeyRE = lazyRegexp(`^[A-Z2-7]{20,30}$`)
	secretRE    = lazyRegexp(`^[A-Za-z0-9+/=]{43,64}$`)
	pathRE      = lazyRegexp(`^(/[A-Za-z0-9_-]+)*$`)
	keyIDRE     = lazyRegexp(`^[A-Za-z0-9._-]{1,128}$`)
)

func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

// LoadConfig reads and checks a JSON configuration file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	var c Config
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
	}
	return &c, c.Check()
}

// Check validates the configuration and loads the mTLS CA files. Errors
// never repeat a secret.
func (c *Config) Check() error {
	if c.HealthKey == "" {
		return fmt.Errorf("%w: healthKey is required (a dedicated test key)", ErrConfig)
	}
	if c.FleetSize == 0 {
		c.FleetSize = 1
	}
	if c.BackendTimeoutMs < 0 || time.Duration(c.BackendTimeoutMs)*time.Millisecond > maxBackendTimeout ||
		c.MaxBackendCalls < 0 || c.MaxBackendCalls > maxBackendCalls {
		return fmt.Errorf("%w: backendTimeoutMs is 1 to %d (AWS KMS waits 250 ms), maxBackendCalls 1 to %d", ErrConfig, maxBackendTimeout.Milliseconds(), maxBackendCalls)
	}
	if len(c.HealthKeys) > 9 {
		return fmt.Errorf("%w: healthKeys: at most 9 (a health response has at most ten ekmFleetDetails)", ErrConfig)
	}
	for i, k := range c.HealthKeys {
		if !keyIDRE().MatchString(k) || k == c.HealthKey || slices.Contains(c.HealthKeys[:i], k) {
			return fmt.Errorf("%w: healthKeys: %q is not a key name, or is given twice", ErrConfig, k)
		}
	}
	if c.FleetSize < 0 || len(c.Prefixes) == 0 {
		return fmt.Errorf("%w: fleetSize must be positive and at least one prefix configured", ErrConfig)
	}
	var paths []string
	for i := range c.Prefixes {
		p := &c.Prefixes[i]
		if slices.Contains(paths, p.Path) {
			return fmt.Errorf("%w: prefix %q configured twice", ErrConfig, p.Path)
		}
		paths = append(paths, p.Path)
		if err := p.check(); err != nil {
			return fmt.Errorf("%w: prefix %q: %v", ErrConfig, p.Path, err)
		}
	}
	return nil
}

func (p *Prefix) check() error {
	if !pathRE().MatchString(p.Path) || len(p.Path+"/kms/xks/v1") > 128 {
		return errors.New("a path prefix is /SEGMENT… of letters, digits, - and _ (with /kms/xks/v1 at most 128 characters)")
	}
	if p.Principal == "" {
		p.Principal = "service:xks"
	}
	if p.RateLimit < 0 || p.RateBurst < 0 || p.RateLimit > 1e6 {
		return errors.New("rateLimit and rateBurst cannot be negative (rateLimit at most 1,000,000)")
	}
	if len(p.Credentials) == 0 {
		return errors.New("at least one credential is required")
	}
	var ids []string
	for i, cr := range p.Credentials {
		if !accessKeyRE().MatchString(cr.AccessKeyID) || slices.Contains(ids, cr.AccessKeyID) {
			return fmt.Errorf("credentials[%d]: an access key ID is 20 to 30 characters of A-Z and 2-7, unique in the prefix", i)
		}
		if !secretRE().MatchString(cr.SecretAccessKey) {
			return fmt.Errorf("credentials[%d]: a secret access key is 43 to 64 characters of A-Z, a-z, 0-9, +, / and =", i)
		}
		ids = append(ids, cr.AccessKeyID)
	}
	for _, k := range p.Keys {
		if !keyIDRE().MatchString(k) {
			return fmt.Errorf("key %q is not a valid externalKeyId", k)
		}
	}
	if p.MTLS != nil {
		return p.MTLS.load()
	}
	return nil
}

func (m *MTLS) load() error {
	if m.CAFile == "" || m.SubjectCN == "" {
		return errors.New("mtls needs caFile and subjectCommonName")
	}
	pem, err := os.ReadFile(m.CAFile)
	if err != nil {
		return err
	}
	m.pool = x509.NewCertPool()
	if !m.pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("mtls: no certificate in %s", m.CAFile)
	}
	return nil
}
