package xks

import (
	"crypto/x509"
	"errors"
	"net/http"
	"sync"
	"time"
)

// ErrClientCert is returned, failing the TLS handshake, for a client
// certificate that no prefix with mutual TLS accepts.
var ErrClientCert = errors.New("xks: the TLS client certificate is not accepted by any path prefix with mutual TLS (CA, subject common name, validity or client-auth usage)")

// WantsClientCert reports whether the current configuration has a prefix
// with mutual TLS, so TLS clients are asked for a certificate. It is read
// at every handshake: a reload that adds or changes mTLS applies to the
// connections opened after it.
func (h *Handler) WantsClientCert() bool {
	cfg := h.cfg.Load()
	for i := range cfg.Prefixes {
		if cfg.Prefixes[i].MTLS != nil {
			return true
		}
	}
	return false
}

// VerifyClientCert fails the TLS handshake for a presented chain (leaf
// first) that no prefix with mutual TLS accepts: another CA, another
// subject common name, outside its validity period, or not for client
// authentication. The handshake cannot see the request's path, so a
// certificate one prefix accepts reaches HTTP, where every request is
// checked again against its own prefix (AuthenticationFailedException),
// as is a request without a certificate.
func (h *Handler) VerifyClientCert(chain []*x509.Certificate) error {
	if len(chain) == 0 {
		return nil
	}
	cfg := h.cfg.Load()
	for i := range cfg.Prefixes {
		if m := cfg.Prefixes[i].MTLS; m != nil && m.accepts(chain) {
			return nil
		}
	}
	return ErrClientCert
}

// accepts reports whether chain's leaf chains to m's CA, is valid now,
// allows client authentication and has m's subject common name.
func (m *MTLS) accepts(chain []*x509.Certificate) bool {
	leaf := chain[0]
	if leaf.Subject.CommonName != m.SubjectCN {
		return false
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: m.pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err == nil
}

// verifyMTLS requires, for a prefix with MTLS, a client certificate that
// m accepts. A chain m accepted is remembered (by its parsed leaf, which
// every request of a connection shares, and m, which a reload replaces)
// until the leaf expires, so a connection's requests after the first
// skip the signature checks.
func (h *Handler) verifyMTLS(r *http.Request, p *Prefix) error {
	m := p.MTLS
	if m == nil {
		return nil
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return errorf("AuthenticationFailedException", "this path prefix requires a TLS client certificate")
	}
	leaf := r.TLS.PeerCertificates[0]
	if h.accepted.has(leaf, m, h.now()) {
		return nil
	}
	if !m.accepts(r.TLS.PeerCertificates) {
		return errorf("AuthenticationFailedException", "the TLS client certificate is not the one configured for this path prefix")
	}
	h.accepted.add(leaf, m)
	return nil
}

// acceptedCerts remembers the client certificates an MTLS accepted.
type acceptedCerts struct {
	mu sync.Mutex
	m  map[acceptedCert]struct{}
}

type acceptedCert struct {
	leaf *x509.Certificate
	mtls *MTLS
}

// maxAcceptedCerts bounds the memory: a full table is emptied.
const maxAcceptedCerts = 1024

func (a *acceptedCerts) has(leaf *x509.Certificate, m *MTLS, now time.Time) bool {
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.m[acceptedCert{leaf, m}]
	return ok
}

func (a *acceptedCerts) add(leaf *x509.Certificate, m *MTLS) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil || len(a.m) >= maxAcceptedCerts {
		a.m = map[acceptedCert]struct{}{}
	}
	a.m[acceptedCert{leaf, m}] = struct{}{}
}
