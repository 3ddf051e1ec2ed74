package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"
)

// ListenConfig says where and how Serve listens. At least one of Unix,
// TLSAddr and HTTPAddr is set.
type ListenConfig struct {
	// Unix is a socket path; UnixMode its permission bits (0600 when 0).
	// Callers that do not sign are the peer's user ("user:NAME").
	Unix     string
	UnixMode os.FileMode
	// TLSAddr is a TCP address served with TLS from CertFile and KeyFile,
	// which ReloadCerts reloads. TLS 1.3 unless TLS12 allows 1.2.
	TLSAddr, CertFile, KeyFile string
	TLS12                      bool
	// ClientCAFile enables mutual TLS: client certificates are verified
	// against it; RequireClientCert refuses connections without one.
	ClientCAFile      string
	RequireClientCert bool
	// ClientCerts, without ClientCAFile, is consulted at every TLS
	// handshake: when it wants client certificates the handshake asks for
	// one and fails for a certificate it refuses (the XKS proxy's
	// per-prefix mutual TLS, which a configuration reload may change).
	ClientCerts ClientCertVerifier
	// HTTPAddr serves plain HTTP, for tests: it must be a loopback IP.
	HTTPAddr string

	ReadTimeout, WriteTimeout, IdleTimeout time.Duration // 10s, 30s, 120s when 0
	MaxConns                               int           // per listener; 1024 when 0
	DrainTimeout                           time.Duration // 30s when 0
	// ReloadCerts, when a value arrives, rereads CertFile and KeyFile; a
	// pair that fails to load leaves the previous one in service.
	ReloadCerts <-chan struct{}
	// MetricsAddr, when set, serves Prometheus metrics on plain HTTP at
	// /metrics (bind it to an address only the monitoring can reach).
	MetricsAddr string
	// Ready, when set, is called with the bound addresses once listening.
	Ready func(addrs []string)
}

// ClientCertVerifier decides, during each TLS handshake, whether to ask
// for a client certificate and whether a presented one is acceptable.
type ClientCertVerifier interface {
	// WantsClientCert reports whether clients are asked for a certificate.
	WantsClientCert() bool
	// VerifyClientCert returns an error, which fails the handshake, for a
	// presented chain (leaf first) the handler would refuse for every use.
	// A client that presents none is not refused here.
	VerifyClientCert(chain []*x509.Certificate) error
}

// Serve serves until ctx is done, then stops accepting, lets in-flight
// requests finish (up to DrainTimeout) and returns nil. It returns an
// error when a listener cannot be set up.
func (s *Server) Serve(ctx context.Context, lc ListenConfig) error {
	lc.defaults()
	lns, err := s.listen(lc)
	if err != nil {
		return err
	}
	maddr, stopMetrics, err := s.serveMetrics(lc)
	if err != nil {
		closeAll(lns)
		return err
	}
	defer stopMetrics()
	go s.sweepDeletions(ctx)
	srv := &http.Server{Handler: s, ReadTimeout: lc.ReadTimeout, WriteTimeout: lc.WriteTimeout,
		IdleTimeout: lc.IdleTimeout, ReadHeaderTimeout: lc.ReadTimeout, ConnContext: withPeer,
		ErrorLog: slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn), MaxHeaderBytes: 64 << 10}
	var addrs []string
	errc := make(chan error, len(lns))
	for _, ln := range lns {
		addrs = append(addrs, ln.Addr().String())
		go func() { errc <- srv.Serve(ln) }()
	}
	if lc.Ready != nil {
		lc.Ready(append(addrs, maddr...))
	}
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	return s.drain(srv, lc, err)
}

// drain stops srv gracefully: no new connections, in-flight requests
// finish within DrainTimeout.
func (s *Server) drain(srv *http.Server, lc ListenConfig, err error) error {
	dctx, cancel := context.WithTimeout(context.Background(), lc.DrainTimeout)
	defer cancel()
	serr := srv.Shutdown(dctx)
	if lc.Unix != "" {
		_ = os.Remove(lc.Unix)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return serr
}

// serveMetrics serves /metrics on lc.MetricsAddr, if set, and returns its
// bound address (the last of those Ready reports) and how to stop it.
func (s *Server) serveMetrics(lc ListenConfig) ([]string, func(), error) {
	if lc.MetricsAddr == "" {
		return nil, func() {}, nil
	}
	ln, err := net.Listen("tcp", lc.MetricsAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("server: metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", s.metricsHandler())
	msrv := &http.Server{Handler: mux, ReadHeaderTimeout: lc.ReadTimeout}
	go func() { _ = msrv.Serve(ln) }()
	return []string{ln.Addr().String()}, func() { _ = msrv.Close() }, nil
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		_ = ln.Close()
	}
}

func (lc *ListenConfig) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&lc.ReadTimeout, 10*time.Second)
	def(&lc.WriteTimeout, 30*time.Second)
	def(&lc.IdleTimeout, 120*time.Second)
	def(&lc.DrainTimeout, 30*time.Second)
	if lc.MaxConns <= 0 {
		lc.MaxConns = 1024
	}
	if lc.UnixMode == 0 {
		lc.UnixMode = 0o600
	}
}

// listen opens every configured listener, closing them all on failure.
func (s *Server) listen(lc ListenConfig) (lns []net.Listener, err error) {
	defer func() {
		if err != nil {
			closeAll(lns)
		}
	}()
	add := func(ln net.Listener, e error) {
		if e != nil {
			err = errors.Join(err, e)
			return
		}
		lns = append(lns, ln)
	}
	if lc.Unix != "" {
		add(listenUnix(lc.Unix, lc.UnixMode, lc.MaxConns))
	}
	if lc.TLSAddr != "" {
		add(s.listenTLS(lc))
	}
	if lc.HTTPAddr != "" {
		add(listenLoopback(lc.HTTPAddr, lc.MaxConns))
	}
	if err == nil && len(lns) == 0 {
		err = errors.New("server: no listener configured (unix socket, TLS address or loopback HTTP address)")
	}
	return lns, err
}

func listenUnix(path string, mode os.FileMode, maxConns int) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if c, err := net.Dial("unix", path); err == nil { // in use: leave it
			_ = c.Close()
			return nil, fmt.Errorf("server: %s is in use by another server", path)
		}
		_ = os.Remove(path) // a stale socket of a server that died
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("server: unix socket: %w", err)
	}
	if err := os.Chmod(path, mode); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("server: unix socket mode: %w", err)
	}
	return newLimitListener(ln, maxConns), nil
}

// listenLoopback opens a plain HTTP listener, only on a loopback IP.
func listenLoopback(addr string, maxConns int) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("server: plain HTTP address %q: %w", addr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("server: plain HTTP is served only on a loopback IP address, not %q", host)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return newLimitListener(ln, maxConns), nil
}

// listenTLS opens the TLS listener with reloadable certificates.
func (s *Server) listenTLS(lc ListenConfig) (net.Listener, error) {
	cr, err := newCertReloader(lc.CertFile, lc.KeyFile, s.cfg.Logger.Warn)
	if err != nil {
		return nil, err
	}
	go cr.watch(lc.ReloadCerts)
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, GetCertificate: cr.get}
	if lc.TLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if lc.ClientCAFile == "" && lc.ClientCerts != nil {
		cfg.GetConfigForClient = askingConfig(cfg, lc.ClientCerts)
	}
	if lc.ClientCAFile != "" {
		pem, err := os.ReadFile(lc.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("server: client CA file: %w", err)
		}
		cfg.ClientCAs = x509.NewCertPool()
		if !cfg.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, errors.New("server: client CA file holds no PEM certificate")
		}
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if lc.RequireClientCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	ln, err := net.Listen("tcp", lc.TLSAddr)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return tls.NewListener(newLimitListener(ln, lc.MaxConns), cfg), nil
}

// askingConfig returns a GetConfigForClient that, while v wants client
// certificates, asks for one and verifies it with v in the handshake.
func askingConfig(base *tls.Config, v ClientCertVerifier) func(*tls.ClientHelloInfo) (*tls.Config, error) {
	asking := base.Clone()
	asking.ClientAuth = tls.RequestClientCert
	asking.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return nil
		}
		return v.VerifyClientCert(cs.PeerCertificates)
	}
	return func(*tls.ClientHelloInfo) (*tls.Config, error) {
		if v.WantsClientCert() {
			return asking, nil
		}
		return nil, nil
	}
}

// certReloader serves the current certificate and rereads it on demand.
type certReloader struct {
	certFile, keyFile string
	warn              func(msg string, args ...any)
	mu                sync.RWMutex
	cert              *tls.Certificate
}

func newCertReloader(certFile, keyFile string, warn func(string, ...any)) (*certReloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("server: TLS needs a certificate file and a key file")
	}
	cr := &certReloader{certFile: certFile, keyFile: keyFile, warn: warn}
	return cr, cr.reload()
}

func (cr *certReloader) reload() error {
	c, err := tls.LoadX509KeyPair(cr.certFile, cr.keyFile)
	if err != nil {
		return fmt.Errorf("server: TLS certificate: %w", err)
	}
	cr.mu.Lock()
	cr.cert = &c
	cr.mu.Unlock()
	return nil
}

func (cr *certReloader) watch(ch <-chan struct{}) {
	for range ch {
		if err := cr.reload(); err != nil {
			cr.warn("certificate reload failed; the previous certificate stays in service", "err", err)
		}
	}
}

func (cr *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cr.mu.RLock()
	defer cr.mu.RUnlock()
	return cr.cert, nil
}
