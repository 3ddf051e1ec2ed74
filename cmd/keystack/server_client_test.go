package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// cmdKSCreds runs "kscreds CRED.json": later commands sign their
// requests to a key server in server mode with the access key of
// CRED.json (from `server credentials create --json`), through
// $KEYSTACK_ACCESS_KEY_ID and $KEYSTACK_SECRET_ACCESS_KEY; the ID is
// also $KS_ACCESS_KEY_ID. "kscreds -" removes them.
func cmdKSCreds(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: kscreds CRED.json|-")
	}
	if args[0] == "-" {
		ts.Setenv("KEYSTACK_ACCESS_KEY_ID", "")
		ts.Setenv("KEYSTACK_SECRET_ACCESS_KEY", "")
		return
	}
	var cred struct {
		ID     string `json:"access_key_id"`
		Secret string `json:"secret_access_key"`
	}
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &cred))
	if cred.ID == "" || cred.Secret == "" {
		ts.Fatalf("kscreds: no access key in %s", args[0])
	}
	ts.Setenv("KEYSTACK_ACCESS_KEY_ID", cred.ID)
	ts.Setenv("KEYSTACK_SECRET_ACCESS_KEY", cred.Secret)
	ts.Setenv("KS_ACCESS_KEY_ID", cred.ID)
}

// cmdGenCerts runs "gencerts DIR SPIFFE-ID": it writes a throwaway CA
// (ca.pem), a server certificate for 127.0.0.1 (server.pem,
// server-key.pem) and a client certificate whose URI SAN is SPIFFE-ID
// (client.pem, client-key.pem), all ECDSA P-256, into DIR.
func cmdGenCerts(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: gencerts DIR SPIFFE-ID")
	}
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o700))
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ts.Check(err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ts.Check(err)
	writePEM(ts, filepath.Join(dir, "ca.pem"), "CERTIFICATE", caDER)
	ca, err := x509.ParseCertificate(caDER)
	ts.Check(err)
	spiffe, err := url.Parse(args[1])
	ts.Check(err)
	for i, leaf := range []struct {
		name string
		tmpl x509.Certificate
	}{
		{"server", x509.Certificate{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}},
		{"client", x509.Certificate{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, URIs: []*url.URL{spiffe}}},
	} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ts.Check(err)
		tmpl := leaf.tmpl
		tmpl.SerialNumber, tmpl.Subject = big.NewInt(int64(i+2)), pkix.Name{CommonName: leaf.name}
		tmpl.NotBefore, tmpl.NotAfter, tmpl.KeyUsage = time.Now().Add(-time.Hour), time.Now().Add(time.Hour), x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca, &key.PublicKey, caKey)
		ts.Check(err)
		writePEM(ts, filepath.Join(dir, leaf.name+".pem"), "CERTIFICATE", der)
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		ts.Check(err)
		writePEM(ts, filepath.Join(dir, leaf.name+"-key.pem"), "PRIVATE KEY", kder)
	}
}

func writePEM(ts *testscript.TestScript, path, typ string, der []byte) {
	ts.Check(os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
}

// cmdWaitTCP runs "waittcp ADDR": it waits up to 30 s for something to
// accept TCP connections at ADDR (a TLS server started in the background).
func cmdWaitTCP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waittcp ADDR")
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", args[0], time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("waittcp: nothing listens at %s within 30s", args[0])
}
