package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/keystack/keystack/gate"
	"github.com/keystack/keystack/internal/kmswire"
	"github.com/keystack/keystack/internal/serverstore"
	"github.com/keystack/keystack/keystore"
)

// Defaults of Config.
const (
	DefaultRegion  = "us-east-1"
	DefaultAccount = "111122223333"
)

// Defaults of Config's limits, as its field docs state them.
const (
	defaultMaxBodyBytes = 64 << 10
	defaultMaxSkew      = 5 * time.Minute
)

// Config configures a Server.
type Config struct {
	// Store is the keystore served, opened and unsealed by the caller. The
	// Server never closes it.
	Store *keystore.Store
	// Region and Account appear in key ARNs
	// (arn:aws:kms:REGION:ACCOUNT:key/ID); SigV4 requests must be scoped
	// to Region.
	Region, Account string
	// MaxBodyBytes caps a request body (0 means 64 KiB).
	MaxBodyBytes int64
	// MaxSkew is the largest accepted difference between a signed
	// request's X-Amz-Date and the server clock (0 means 5 minutes).
	MaxSkew time.Duration
	// Logger receives one line per request (never a secret, key or
	// plaintext); slog.Default when nil.
	Logger *slog.Logger
	// CertPrincipals maps the hex SHA-256 of a client certificate's
	// SubjectPublicKeyInfo to a principal, for certificates without a
	// SPIFFE ID.
	CertPrincipals map[string]string
	// RateLimit is each principal's sustained request rate (requests a
	// second, token bucket of RateBurst); above it requests get
	// ThrottlingException. 0 means no limit.
	RateLimit float64
	RateBurst int
	// DeletionSweep is how often keys whose deletion date has passed are
	// erased, each deletion decided for the store's own principal; one
	// minute when 0.
	DeletionSweep time.Duration
	// Now is the clock for SigV4 skew checks; time.Now when nil.
	Now func() time.Time
	// CustomKeyStores maps custom key store IDs to RFC 7512 URIs of PKCS#11
	// tokens (token= and pin-source=, no object= and no PIN): CreateKey
	// with Origin AWS_CLOUDHSM and one of these IDs generates the key on
	// that token, through the store's pkcs11 backend.
	CustomKeyStores map[string]string
	// XKS, when set, serves every request whose path holds /kms/xks/v1/
	// (the AWS KMS XKS proxy API, package xks) on every listener.
	XKS http.Handler
}

// Server answers KMS requests for one keystore. It is safe for
// concurrent use; Serve runs it on listeners.
type Server struct {
	cfg     Config
	kms     serverstore.Ops // the key server's part of cfg.Store
	ops     map[string]operation
	metrics *metrics
	limiter *limiter
	sigv4   kmswire.Verifier // caches signing keys by secret, not access key ID
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: a keystore is required")
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.Account == "" {
		cfg.Account = DefaultAccount
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = defaultMaxBodyBytes
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = defaultMaxSkew
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DeletionSweep <= 0 {
		cfg.DeletionSweep = time.Minute
	}
	return &Server{cfg: cfg, kms: serverstore.Of(cfg.Store), ops: operations(), metrics: newMetrics(),
		limiter: newLimiter(cfg.RateLimit, cfg.RateBurst, cfg.Now)}, nil
}

// ServeHTTP implements http.Handler: GET /healthz answers "ok"; every
// other request must be a KMS JSON 1.1 POST to /.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
		return
	}
	if s.cfg.XKS != nil && strings.Contains(r.URL.Path, "/kms/xks/v1/") {
		s.cfg.XKS.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	id := newRequestID()
	w.Header().Set("X-Amzn-RequestId", id)
	op, principal, err := s.handle(w, r, id)
	code := "ok"
	if err != nil {
		cause := err
		err = kmsError(err)
		code = err.(*kmswire.Error).Code
		kmswire.WriteError(w, err)
		if code == "KMSInternalException" {
			// The client sees only "internal error"; the operator must
			// see why (keystore errors name no secret).
			s.cfg.Logger.Error("request failed", "id", id, "op", opLabel(op), "err", cause)
		}
	}
	d := time.Since(start)
	_, known := s.ops[op]
	s.metrics.observe(opLabel(op), code, d, known)
	s.cfg.Logger.Info("request", "id", id, "op", opLabel(op), "principal", principal, "remote", r.RemoteAddr,
		"result", code, "duration", d)
}

// handle runs one KMS request: read, authenticate, dispatch. The
// operation decides and audits through the store before acting.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, id string) (op, principal string, err error) {
	op, err = parseTarget(r)
	if err != nil {
		return op, "", err
	}
	r = r.WithContext(s.kms.ReadOnce(r.Context())) // one state freshness check per request
	body, err := s.readBody(w, r)
	if err != nil {
		return op, "", err
	}
	caller, err := s.authenticate(r, body)
	if err != nil {
		return op, "", err
	}
	caller.RequestID = id
	if !s.limiter.allow(caller.Principal) {
		return op, caller.Principal, kmswire.Errorf("ThrottlingException", "Rate exceeded")
	}
	h, ok := s.ops[op]
	if !ok {
		return op, caller.Principal, kmswire.Errorf("UnknownOperationException", "unknown operation %q", opLabel(op))
	}
	resp, err := h(&call{s: s, ctx: r.Context(), caller: caller}, body)
	if err != nil {
		return op, caller.Principal, err
	}
	kmswire.WriteJSON(w, resp)
	return op, caller.Principal, nil
}

// opLabel names an operation in logs and metrics: KMS operations by
// name, administration ones with their prefix.
func opLabel(target string) string { return strings.TrimPrefix(target, kmswire.TargetPrefix) }

// parseTarget returns the request's X-Amz-Target, which must name a KMS
// or an administration operation.
func parseTarget(r *http.Request) (string, error) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		return "", kmswire.Errorf("UnknownOperationException", "only POST / is served")
	}
	t := r.Header.Get("X-Amz-Target")
	if !strings.HasPrefix(t, kmswire.TargetPrefix) && !strings.HasPrefix(t, adminTargetPrefix) {
		return "", kmswire.Errorf("UnknownOperationException", "X-Amz-Target must be %s<Operation> or %s<Operation>", kmswire.TargetPrefix, adminTargetPrefix)
	}
	if ct := r.Header.Get("Content-Type"); ct != kmswire.ContentType {
		return t, kmswire.Errorf("ValidationException", "Content-Type must be %s", kmswire.ContentType)
	}
	return t, nil
}

// readBody reads the whole body, refusing one over MaxBodyBytes before
// anything else is done with the request.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, kmswire.Errorf("ValidationException", "request body exceeds %d bytes", s.cfg.MaxBodyBytes)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, kmswire.Errorf("ValidationException", "request body exceeds %d bytes", s.cfg.MaxBodyBytes)
	}
	if err != nil {
		return nil, kmswire.Errorf("ValidationException", "reading the request body failed")
	}
	return body, nil
}

func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// call is one authenticated request on its way to an operation.
type call struct {
	s      *Server
	ctx    context.Context
	caller gate.Caller
}

// sweepDeletions erases keys whose deletion date has passed, at start and
// every DeletionSweep, until ctx is done.
func (s *Server) sweepDeletions(ctx context.Context) {
	t := time.NewTicker(s.cfg.DeletionSweep)
	defer t.Stop()
	for {
		deleted, err := s.kms.DeleteDueKeys(ctx)
		for _, name := range deleted {
			s.cfg.Logger.Info("key deleted: its deletion date has passed", "key", name)
		}
		if err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("deleting keys due for deletion failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
