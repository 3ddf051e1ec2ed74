// Package kmstest is an in-memory AWS KMS for tests: an HTTP server on
// loopback that speaks the KMS JSON 1.1 wire protocol (POST with
// X-Amz-Target: TrentService.<Operation>), so the real aws-sdk-go-v2 client
// can talk to it unchanged.
//
// Keys hold real AES-256-GCM material. Ciphertext blobs are self-describing
// (key ID, backing-key version, IV, sealed data) and bind the encryption
// context as AAD, so a wrong context fails with InvalidCiphertextException as
// in KMS. Requests must carry a SigV4 Authorization header, which the server
// verifies against its test credentials. Regions are routed by the region in
// the request's credential scope, so one server serves every Region.
//
// Faults (throttling, 500s, delays, dropped connections) and access denials
// can be injected per operation or key; Calls and Requests let tests assert
// what reached the server.
package kmstest

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/keystack/keystack/internal/kmswire"
)

// Test credentials the server accepts unless WithCredentials says otherwise.
const (
	AccessKeyID     = "AKIAKMSTESTEXAMPLE01"
	SecretAccessKey = "kmstest/secret/key/for/loopback/only/0000"
	// DefaultAccountID is the account that owns every key unless WithAccountID is given.
	DefaultAccountID = "111122223333"
)

// maxBodyBytes bounds a request body: KMS caps plaintext at 4096 bytes and
// ciphertext blobs at 6144, so 64 KiB of JSON leaves ample room.
const maxBodyBytes = 64 << 10

// Server is a KMS endpoint on 127.0.0.1. It is safe for concurrent use.
type Server struct {
	ts        *httptest.Server
	done      chan struct{} // closed by Close to release delayed requests
	accountID string
	partition string
	akid      string
	secret    string
	verifySig bool

	mu       sync.Mutex
	keys     map[string]*key    // region + "/" + key ID
	aliases  map[string]string  // region + "/" + alias name → key ID
	denied   map[string]bool    // key ARN
	faults   map[string][]Fault // operation → pending faults
	calls    map[string]int
	requests map[string][]Request
}

// Option configures a Server.
type Option func(*Server)

// WithAccountID sets the AWS account ID in key ARNs.
func WithAccountID(id string) Option { return func(s *Server) { s.accountID = id } }

// WithPartition sets the ARN partition ("aws", "aws-cn", "aws-us-gov").
func WithPartition(p string) Option { return func(s *Server) { s.partition = p } }

// WithCredentials sets the access key pair the server accepts.
func WithCredentials(accessKeyID, secret string) Option {
	return func(s *Server) { s.akid, s.secret = accessKeyID, secret }
}

// WithoutSignatureCheck makes the server check only the Authorization
// header's shape, not the signature itself.
func WithoutSignatureCheck() Option { return func(s *Server) { s.verifySig = false } }

// Request records what a client sent in one call, for assertions.
type Request struct {
	KeyID             string // KeyId, DestinationKeyId for ReEncrypt, or ""
	GrantTokens       []string
	EncryptionContext map[string]string
	Region            string
}

// NewServer starts a server listening on 127.0.0.1 on a random port.
func NewServer(opts ...Option) *Server {
	s := &Server{
		accountID: DefaultAccountID, partition: "aws",
		akid: AccessKeyID, secret: SecretAccessKey, verifySig: true,
		done: make(chan struct{}), keys: map[string]*key{}, aliases: map[string]string{}, denied: map[string]bool{},
		faults: map[string][]Fault{}, calls: map[string]int{}, requests: map[string][]Request{},
	}
	for _, o := range opts {
		o(s)
	}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s
}

// URL returns the endpoint, e.g. "http://127.0.0.1:40123".
func (s *Server) URL() string { return s.ts.URL }

// Close shuts the server down and waits for in-flight requests.
func (s *Server) Close() {
	close(s.done)
	s.ts.CloseClientConnections()
	s.ts.Close()
}

// Calls returns how many requests for op (e.g. "Decrypt") reached the
// server, including failed and faulted ones.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Requests returns the recorded requests for op in arrival order.
func (s *Server) Requests(op string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests[op]...)
}

// DenyKey makes every operation on the key with this ARN fail with
// AccessDeniedException.
func (s *Server) DenyKey(arn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[arn] = true
}

// FaultKind is the kind of an injected fault.
type FaultKind int

const (
	FaultThrottle  FaultKind = iota + 1 // 400 ThrottlingException
	FaultStatus500                      // 500 KMSInternalException
	FaultDelay                          // sleep before answering normally
	FaultResetConn                      // hijack the connection and close it
)

// Fault is an injected failure. Times is how many requests it affects;
// 0 means every request until ClearFaults.
type Fault struct {
	Kind  FaultKind
	Times int
	Delay time.Duration
}

// Throttle fails the next n requests with ThrottlingException.
func Throttle(n int) Fault { return Fault{Kind: FaultThrottle, Times: n} }

// Status500 fails the next n requests with HTTP 500 KMSInternalException.
// n = 0 fails every request.
func Status500(n int) Fault { return Fault{Kind: FaultStatus500, Times: n} }

// Delay holds every request for d (or until the client gives up) before answering.
func Delay(d time.Duration) Fault { return Fault{Kind: FaultDelay, Delay: d} }

// ResetConnection drops the connection of the next n requests without an answer.
func ResetConnection(n int) Fault { return Fault{Kind: FaultResetConn, Times: n} }

// InjectFault queues f for requests of operation op (e.g. "GenerateDataKey").
// Faults apply in the order injected.
func (s *Server) InjectFault(op string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[op] = append(s.faults[op], f)
}

// ClearFaults removes every pending fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string][]Fault{}
}

// nextFault consumes one use of the first pending fault for op.
func (s *Server) nextFault(op string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[op]
	if len(q) == 0 {
		return Fault{}, false
	}
	f := q[0]
	if f.Times > 0 {
		q[0].Times--
		if q[0].Times == 0 {
			s.faults[op] = q[1:]
		}
	}
	return f, true
}

// apiError is a KMS error response.
type apiError = kmswire.Error

func errf(code, format string, args ...any) *apiError { return kmswire.Errorf(code, format, args...) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	op, _ := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()
	// Read the body first: only then does net/http notice a client that
	// hangs up, which a delayed request must see.
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		writeError(w, errf("ValidationException", "reading body: %v", err))
		return
	}
	if f, ok := s.nextFault(op); ok && s.applyFault(w, r, f) {
		return
	}
	resp, err := s.handle(r, op, body)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(resp)
}

// applyFault acts out f and reports whether the request is finished.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, f Fault) bool {
	switch f.Kind {
	case FaultThrottle:
		writeError(w, errf("ThrottlingException", "Rate exceeded"))
	case FaultStatus500:
		writeError(w, errf("KMSInternalException", "injected internal failure"))
	case FaultResetConn:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				if tc, ok := conn.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // RST rather than FIN
				}
				_ = conn.Close()
				return true
			}
		}
		writeError(w, errf("KMSInternalException", "connection reset unsupported"))
	case FaultDelay:
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
			return false
		case <-r.Context().Done():
		case <-s.done:
		}
	default:
		return false
	}
	return true
}

func writeError(w http.ResponseWriter, err error) {
	if _, ok := err.(*apiError); !ok {
		err = errf("KMSInternalException", "%v", err)
	}
	kmswire.WriteError(w, err)
}

// handle authenticates the request, decodes its body and runs op.
func (s *Server) handle(r *http.Request, op string, body []byte) (any, error) {
	if r.Method != http.MethodPost {
		return nil, errf("ValidationException", "method %s not allowed", r.Method)
	}
	if len(body) > maxBodyBytes {
		return nil, errf("ValidationException", "request body exceeds %d bytes", maxBodyBytes)
	}
	region, err := s.authenticate(r, body)
	if err != nil {
		return nil, err
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		return nil, errf("ValidationException", "unsupported Content-Type %q", ct)
	}
	h, ok := operations[op]
	if !ok {
		return nil, errf("UnknownOperationException", "unknown operation %q", op)
	}
	return h(s, &call{ctx: r.Context(), op: op, region: region}, body)
}

// call is one decoded request's routing information.
type call struct {
	ctx    context.Context
	op     string
	region string
}
