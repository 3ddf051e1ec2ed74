// Package testca issues X.509 certificates for tests: an ECDSA P-256 CA
// and the TLS server and client certificates it signs. Keys are made
// fresh each time; nothing here is fit for anything but a test.
package testca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"time"
)

// Fataler receives testca's failures: a testing.TB or a
// testscript.TestScript.
type Fataler interface {
	Fatalf(format string, args ...any)
}

// CA is a certificate authority and its key.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// New returns a CA named cn, valid from three hours ago to an hour from
// now (it can sign certificates that have already expired).
func New(t Fataler, cn string) *CA {
	key := newKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial(t), Subject: pkix.Name{CommonName: cn}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: now.Add(-3 * time.Hour), NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testca: CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testca: CA certificate: %v", err)
	}
	return &CA{Cert: cert, Key: key}
}

// PEM returns the CA's certificate in PEM.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Leaf describes a certificate for Issue.
type Leaf struct {
	CN     string
	Serial int64 // 0: random
	// NotAfter ends its validity, which starts two hours earlier; zero
	// means an hour from now.
	NotAfter time.Time
	// Server makes a TLS server certificate (server-auth usage) for IPs;
	// otherwise it is a client certificate (client-auth usage).
	Server bool
	IPs    []net.IP
	URIs   []*url.URL // subject alternative names, such as a SPIFFE ID
}

// Issue returns the DER certificate ca signs for l, and its key.
func (ca *CA) Issue(t Fataler, l Leaf) ([]byte, *ecdsa.PrivateKey) {
	key := newKey(t)
	notAfter := l.NotAfter
	if notAfter.IsZero() {
		notAfter = time.Now().Add(time.Hour)
	}
	usage := x509.ExtKeyUsageClientAuth
	if l.Server {
		usage = x509.ExtKeyUsageServerAuth
	}
	sn := big.NewInt(l.Serial)
	if l.Serial == 0 {
		sn = serial(t)
	}
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: l.CN}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: l.IPs, URIs: l.URIs, NotBefore: notAfter.Add(-2 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatalf("testca: issue %q: %v", l.CN, err)
	}
	return der, key
}

// IssuePEM is Issue with the certificate and its key (SEC 1, "EC PRIVATE
// KEY") in PEM, as certificate files hold them.
func (ca *CA) IssuePEM(t Fataler, l Leaf) (certPEM, keyPEM []byte) {
	der, key := ca.Issue(t, l)
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatalf("testca: key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// IssueTLS is Issue as a tls.Certificate, for a client or server in the
// same process.
func (ca *CA) IssueTLS(t Fataler, l Leaf) tls.Certificate {
	der, key := ca.Issue(t, l)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func newKey(t Fataler) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testca: key: %v", err)
	}
	return key
}

func serial(t Fataler) *big.Int {
	n, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatalf("testca: serial: %v", err)
	}
	return n
}
