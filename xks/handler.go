package xks

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keystack/keystack/gate"
	"github.com/keystack/keystack/internal/kmswire"
	"github.com/keystack/keystack/internal/serverstore"
	"github.com/keystack/keystack/keystore"
)

// service is the SigV4 service name AWS KMS signs XKS requests for.
const service = "kms-xks-proxy"

// maxBody bounds a request body: 8,192 bytes of AAD and ciphertext or
// plaintext up to maxData, Base64-encoded, and 2,048-character ARNs.
const maxBody = 64 << 10

// maxSkew is how far a request's X-Amz-Date may be from the proxy's clock.
const maxSkew = 5 * time.Minute

// Handler serves the XKS proxy API. It is safe for concurrent use.
type Handler struct {
	cfg    atomic.Pointer[Config]
	store  serverstore.Ops // the XKS part of the keystore.Store
	now    func() time.Time
	health healthCache
	quotas quotas
	slots  backendSlots
	sigv4  kmswire.Verifier
	// accepted are the client certificates verifyMTLS accepted.
	accepted acceptedCerts
	// Logger, when set, gets one line per request: operation, prefix, key,
	// the request metadata, result and duration; never data or secrets.
	Logger *slog.Logger
}

// New returns a Handler serving cfg (checked with Config.Check) over the
// keys of store.
func New(cfg *Config, store *keystore.Store) *Handler {
	h := &Handler{store: serverstore.Of(store), now: time.Now}
	h.cfg.Store(cfg)
	return h
}

// SetConfig replaces the configuration (checked with Config.Check) for
// the requests that start after it, without dropping connections: the
// credential rotation the specification asks for. A request in flight
// finishes under the configuration it started with.
func (h *Handler) SetConfig(cfg *Config) { h.cfg.Store(cfg) }

// request is one authenticated XKS request.
type request struct {
	prefix *Prefix
	keyID  string // "" for health
	op     string // metadata, encrypt, decrypt or health
	body   []byte
	mtls   bool
	source netip.Addr
	meta   *metadataFields // once parsed
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	req, err := h.accept(r)
	if err != nil {
		h.finish(w, nil, nil, err, start)
		return
	}
	var resp any
	if req.op == "health" { // each health key's probe has its own deadline
		resp, err = h.healthStatus(r.Context())
		h.finish(w, req, resp, err, start)
		return
	}
	ctx, cancel := withDeadline(h.store.ReadOnce(r.Context()), h.cfg.Load()) // one state freshness check per request
	defer cancel()
	switch req.op {
	case "metadata":
		resp, err = h.metadata(ctx, req)
	case "encrypt":
		resp, err = h.encrypt(ctx, req)
	case "decrypt":
		resp, err = h.decrypt(ctx, req)
	}
	h.finish(w, req, resp, err, start)
}

// finish writes the response and logs the request.
func (h *Handler) finish(w http.ResponseWriter, req *request, resp any, err error, start time.Time) {
	result := "ok"
	if err != nil {
		e := classify(err)
		result = e.Name
		writeError(w, e)
	} else {
		writeJSON(w, resp)
	}
	if h.Logger == nil {
		return
	}
	args := []any{"result", result, "duration", time.Since(start)}
	if req != nil {
		args = append(args, "op", req.op, "prefix", req.prefix.Path, "key", req.keyID)
		if req.meta != nil {
			args = append(args, "kmsRequestId", req.meta.KMSRequestID, "awsPrincipalArn", req.meta.AWSPrincipalArn,
				"kmsOperation", req.meta.KMSOperation, "kmsKeyArn", req.meta.KMSKeyArn, "kmsViaService", req.meta.KMSViaService)
		}
	}
	h.Logger.Info("xks request", args...)
}

var errMethod = &wireError{Status: http.StatusMethodNotAllowed, Name: "ValidationException", Message: "XKS proxy APIs accept POST only"}

// accept routes and authenticates r: the path (InvalidUriPathException),
// the method (405), the body, SigV4 and mTLS (AuthenticationFailedException),
// then takes from the prefix's quota (ThrottlingException): requests that
// fail authentication use none of it.
func (h *Handler) accept(r *http.Request) (*request, error) {
	req, err := h.route(h.cfg.Load(), r.URL.Path)
	if err != nil {
		return nil, err
	}
	if r.Method != http.MethodPost {
		return nil, errMethod
	}
	if req.body, err = io.ReadAll(io.LimitReader(r.Body, maxBody+1)); err != nil {
		return nil, errorf("ValidationException", "the request body could not be read")
	}
	if len(req.body) > maxBody {
		return nil, errorf("UnsupportedOperationException", "the request body exceeds %d bytes", maxBody)
	}
	if err := h.verifySigV4(r, req); err != nil {
		return nil, err
	}
	if err := h.verifyMTLS(r, req.prefix); err != nil {
		return nil, err
	}
	if err := h.quotas.take(req.prefix, h.now()); err != nil {
		return nil, err
	}
	req.mtls = req.prefix.MTLS != nil
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		req.source = ap.Addr().Unmap()
	}
	return req, nil
}

// route matches path against each prefix's URIs.
func (h *Handler) route(cfg *Config, path string) (*request, error) {
	for i := range cfg.Prefixes {
		p := &cfg.Prefixes[i]
		rest, ok := strings.CutPrefix(path, p.Path+"/kms/xks/v1/")
		if !ok {
			continue
		}
		if rest == "health" {
			return &request{prefix: p, op: "health"}, nil
		}
		f := strings.Split(rest, "/")
		if len(f) == 3 && f[0] == "keys" && keyIDRE().MatchString(f[1]) && slices.Contains([]string{"metadata", "encrypt", "decrypt"}, f[2]) {
			return &request{prefix: p, keyID: f[1], op: f[2]}, nil
		}
	}
	return nil, errorf("InvalidUriPathException", "the URI path is not an XKS proxy API of a configured prefix")
}

var errAuth = errorf("AuthenticationFailedException", "the SigV4 signature is not valid for this path prefix")

// verifySigV4 checks the signature against the prefix's credentials
// (service kms-xks-proxy, host and x-amz-date signed, X-Amz-Date within
// maxSkew), comparing in constant time.
func (h *Handler) verifySigV4(r *http.Request, req *request) error {
	sig, aerr := kmswire.ParseAuthorization(r.Header.Get("Authorization"), service)
	if aerr != nil {
		return errorf("AuthenticationFailedException", "%s", aerr.Message)
	}
	if !slices.Contains(sig.SignedHeaders, "host") || !slices.Contains(sig.SignedHeaders, "x-amz-date") {
		return errorf("AuthenticationFailedException", "host and x-amz-date must be signed")
	}
	t, aerr := sig.RequestTime(r)
	if aerr != nil {
		return errorf("AuthenticationFailedException", "%s", aerr.Message)
	}
	if d := h.now().Sub(t); d > maxSkew || d < -maxSkew {
		return errorf("AuthenticationFailedException", "the request time is more than %s from the proxy's clock", maxSkew)
	}
	i := slices.IndexFunc(req.prefix.Credentials, func(c Credential) bool { return c.AccessKeyID == sig.AccessKeyID })
	if i < 0 {
		return errAuth
	}
	ok, err := h.sigv4.Verify(r, sig, req.body, req.prefix.Credentials[i].SecretAccessKey)
	if err != nil || !ok {
		return errAuth
	}
	return nil
}

// metadataFields is requestMetadata; condition keys keystack:xks/FIELD.
type metadataFields struct {
	AWSPrincipalArn string `json:"awsPrincipalArn"`
	KMSKeyArn       string `json:"kmsKeyArn"`
	KMSOperation    string `json:"kmsOperation"`
	KMSRequestID    string `json:"kmsRequestId"`
	KMSViaService   string `json:"kmsViaService"`
	AWSSourceVpc    string `json:"awsSourceVpc"`
	AWSSourceVpce   string `json:"awsSourceVpce"`
}

func (m *metadataFields) conditions() map[string]string {
	out := map[string]string{}
	for k, v := range map[string]string{
		"awsPrincipalArn": m.AWSPrincipalArn, "kmsKeyArn": m.KMSKeyArn, "kmsOperation": m.KMSOperation,
		"kmsRequestId": m.KMSRequestID, "kmsViaService": m.KMSViaService, "awsSourceVpc": m.AWSSourceVpc, "awsSourceVpce": m.AWSSourceVpce,
	} {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// check requires requestMetadata and the fields every key API needs
// (kmsKeyArn only for encrypt and decrypt); kmsOperation's value is never
// judged. A nil m is a request without requestMetadata.
func (m *metadataFields) check(needKeyArn bool) error {
	switch {
	case m == nil:
		return errorf("ValidationException", "requestMetadata is required")
	case m.AWSPrincipalArn == "":
		return errorf("ValidationException", "requestMetadata.awsPrincipalArn is required")
	case m.KMSOperation == "":
		return errorf("ValidationException", "requestMetadata.kmsOperation is required")
	case m.KMSRequestID == "":
		return errorf("ValidationException", "requestMetadata.kmsRequestId is required")
	case needKeyArn && m.KMSKeyArn == "":
		return errorf("ValidationException", "requestMetadata.kmsKeyArn is required")
	}
	return nil
}

// decode parses the body into v (whose RequestMetadata is a pointer), and
// checks it is present.
func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return errorf("ValidationException", "the request body is not the JSON this API takes")
	}
	return nil
}

// keyRequest is a request body on a key: it checks itself and carries the
// request metadata.
type keyRequest interface {
	check() error
	metadata() *metadataFields
}

// open decodes req's body into in, checks it, and returns keyContext's
// context for its metadata.
func (h *Handler) open(ctx context.Context, req *request, in keyRequest) (context.Context, error) {
	if err := decode(req.body, in); err != nil {
		return nil, err
	}
	if err := in.check(); err != nil {
		return nil, err
	}
	return h.keyContext(ctx, req, in.metadata())
}

// keyContext checks the key is allow-listed and returns the context whose
// keystore decisions are made and audited for the prefix's principal with
// the request metadata.
func (h *Handler) keyContext(ctx context.Context, req *request, m *metadataFields) (context.Context, error) {
	req.meta = m
	if !slices.Contains(req.prefix.Keys, req.keyID) {
		return nil, errorf("KeyNotFoundException", "no such external key")
	}
	method := "sigv4"
	if req.mtls {
		method = "sigv4+mtls"
	}
	c := gate.Caller{Principal: req.prefix.Principal, AuthMethod: method, SourceIP: req.source,
		RequestID: m.KMSRequestID, XKS: m.conditions()}
	if st, err := h.store.ServerKey(ctx, req.keyID); err == nil {
		c.ResourceTags = st.Tags
	} else if errors.Is(err, keystore.ErrKeyNotFound) {
		return nil, err
	}
	return gate.WithCaller(ctx, c), nil
}

// healthCache keeps each health key's last check for at most healthTTL.
type healthCache struct {
	mu   sync.Mutex
	last map[string]healthResult
}

type healthResult struct {
	at  time.Time
	err error
}
