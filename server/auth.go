package server

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net/http"
	"net/netip"
	"slices"

	"github.com/keystack/keystack/gate"
	"github.com/keystack/keystack/internal/kmswire"
	"github.com/keystack/keystack/keystore"
)

// Authentication methods, the values of keystack:AuthMethod.
const (
	authSigV4 = "sigv4"
	authMTLS  = "mtls"
	authUnix  = "unix"
)

var errUnrecognized = kmswire.Errorf("UnrecognizedClientException", "The security token included in the request is invalid.")

// authenticate returns the request's caller. A request carrying an
// Authorization header is authenticated by it alone (SigV4); otherwise a
// verified TLS client certificate, then the Unix socket's peer user.
func (s *Server) authenticate(r *http.Request, body []byte) (gate.Caller, error) {
	c := gate.Caller{SourceIP: sourceIP(r)}
	var err error
	switch {
	case r.Header.Get("Authorization") != "":
		c.AuthMethod = authSigV4
		c.Principal, err = s.sigV4Principal(r, body)
	case r.TLS != nil && len(r.TLS.VerifiedChains) > 0:
		c.AuthMethod = authMTLS
		c.Principal, err = s.certPrincipal(r.TLS.VerifiedChains[0][0])
	case peerUser(r.Context()) != "":
		c.AuthMethod, c.Principal = authUnix, "user:"+peerUser(r.Context())
	default:
		err = kmswire.Errorf("MissingAuthenticationTokenException", "Request is missing Authentication Token")
	}
	return c, err
}

func sourceIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// sigV4Principal verifies a SigV4 signature (service kms, the server's
// Region, host and x-amz-date signed, X-Amz-Date within MaxSkew) with the
// secret of an access key the server issued, compared in constant time.
func (s *Server) sigV4Principal(r *http.Request, body []byte) (string, error) {
	sig, aerr := kmswire.ParseAuthorization(r.Header.Get("Authorization"), "kms")
	if aerr != nil {
		return "", aerr
	}
	if sig.Region != s.cfg.Region {
		return "", kmswire.Errorf("InvalidSignatureException", "the credential scope's Region is not %s", s.cfg.Region)
	}
	if !slices.Contains(sig.SignedHeaders, "host") || !slices.Contains(sig.SignedHeaders, "x-amz-date") {
		return "", kmswire.Errorf("IncompleteSignatureException", "host and x-amz-date must be signed")
	}
	t, aerr := sig.RequestTime(r)
	if aerr != nil {
		return "", aerr
	}
	if d := s.cfg.Now().Sub(t); d > s.cfg.MaxSkew || d < -s.cfg.MaxSkew {
		return "", kmswire.Errorf("InvalidSignatureException", "Signature expired: the request time is more than %s from the server's", s.cfg.MaxSkew)
	}
	if r.Header.Get("X-Amz-Security-Token") != "" {
		return "", errUnrecognized // the server issues no session tokens
	}
	cred, err := s.kms.LookupCredential(r.Context(), sig.AccessKeyID)
	if errors.Is(err, keystore.ErrCredentialNotFound) {
		return "", errUnrecognized
	}
	if err != nil {
		return "", err
	}
	ok, err := s.sigv4.Verify(r, sig, body, cred.Secret)
	if err != nil {
		return "", kmswire.Errorf("IncompleteSignatureException", "the signature could not be checked")
	}
	if !ok {
		return "", kmswire.Errorf("InvalidSignatureException", "The request signature we calculated does not match the signature you provided.")
	}
	return cred.Principal, nil
}

// certPrincipal maps a verified client certificate to its principal: its
// SPIFFE ID URI SAN as "service:spiffe://…", else the principal
// Config.CertPrincipals gives the SHA-256 of its public key.
func (s *Server) certPrincipal(cert *x509.Certificate) (string, error) {
	for _, u := range cert.URIs {
		if u.Scheme == "spiffe" && u.Host != "" {
			return "service:" + u.String(), nil
		}
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	if p := s.cfg.CertPrincipals[hex.EncodeToString(sum[:])]; p != "" {
		return p, nil
	}
	return "", kmswire.Errorf("UnrecognizedClientException", "the client certificate names no principal (no SPIFFE ID, no mapped key)")
}
