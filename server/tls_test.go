package server_test

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keystack/keystack/internal/testca"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/server"
)

// serverFiles writes a server certificate for 127.0.0.1 and its key, as
// ca issues them, and ca's own certificate, into a new directory and
// returns their paths.
func serverFiles(t *testing.T, ca *testca.CA) (certFile, keyFile, caFile string) {
	dir := t.TempDir()
	certFile, keyFile, caFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "ca.pem")
	c, k := issue(t, ca, 10, false)
	writeFile(t, certFile, c)
	writeFile(t, keyFile, k)
	writeFile(t, caFile, ca.PEM())
	return certFile, keyFile, caFile
}

// issue returns a certificate and key in PEM with serial number serial:
// server certificates name 127.0.0.1, client ones carry the URI SANs.
func issue(t *testing.T, ca *testca.CA, serial int64, client bool, uris ...string) (certPEM, keyPEM []byte) {
	l := testca.Leaf{CN: "leaf", Serial: serial, Server: !client}
	if !client {
		l.IPs = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	for _, u := range uris {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		l.URIs = append(l.URIs, pu)
	}
	return ca.IssuePEM(t, l)
}

func writeFile(t *testing.T, path string, data []byte) {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLSListener: TLS 1.3 by default (a 1.2-only client is refused), a
// client certificate's SPIFFE ID is the principal, a client without one
// must sign, and a reload serves the new certificate.
func TestTLSListener(t *testing.T) {
	f := newFixture(t)
	ca := testca.New(t, "test CA")
	certFile, keyFile, caFile := serverFiles(t, ca)
	pol := strings.Replace(testPolicy, `"Resource":"*"}]}`,
		`"Resource":"*"},{"Sid":"Spiffe","Effect":"Allow","Principal":"service:spiffe://example.org/ops","Action":"keystack:ListKeys","Resource":"*","Condition":{"StringEquals":{"keystack:AuthMethod":"mtls"}}}]}`, 1)
	writeFile(t, filepath.Join(f.dir, "policy.json"), []byte(pol))
	st, err := keystore.Open(f.dir, keystore.OpenOptions{Principal: owner, Passphrase: func() ([]byte, error) { return []byte("pw"), nil }})
	if err != nil {
		t.Fatal(err)
	}
	reload := make(chan struct{})
	base := serve(t, st, server.ListenConfig{TLSAddr: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile,
		ClientCAFile: caFile, ReloadCerts: reload})
	u := "https://" + strings.TrimPrefix(base, "http://")
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	cc, ck := issue(t, ca, 20, true, "spiffe://example.org/ops")
	clientCert, err := tls.X509KeyPair(cc, ck)
	if err != nil {
		t.Fatal(err)
	}
	post := func(cfg *tls.Config) (*http.Response, error) {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
		req, _ := http.NewRequest(http.MethodPost, u+"/", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "TrentService.ListKeys")
		return hc.Do(req)
	}
	resp, err := post(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{clientCert}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("mTLS ListKeys: %v %v", resp, err)
	}
	if resp.TLS.Version != tls.VersionTLS13 || resp.TLS.PeerCertificates[0].SerialNumber.Int64() != 10 {
		t.Errorf("TLS version %x, serial %v", resp.TLS.Version, resp.TLS.PeerCertificates[0].SerialNumber)
	}
	resp.Body.Close()
	resp, err = post(&tls.Config{RootCAs: roots})
	if err != nil || resp.StatusCode != 400 {
		t.Errorf("no client certificate, unsigned: %v %v, want 400", resp, err)
	} else {
		resp.Body.Close()
	}
	if _, err := post(&tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("a TLS 1.2 client was served")
	}
	c2, k2 := issue(t, ca, 11, false)
	writeFile(t, certFile, c2)
	writeFile(t, keyFile, k2)
	reload <- struct{}{}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := post(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{clientCert}})
		if err == nil && resp.TLS.PeerCertificates[0].SerialNumber.Int64() == 11 {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reloaded certificate is not served: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	found := false
	for _, e := range auditRecords(t, f) {
		if e.Principal == "service:spiffe://example.org/ops" && e.AuthMethod == "mtls" && e.Decision == "Allow" {
			found = true
		}
	}
	if !found {
		t.Error("no audit record of the mTLS principal")
	}
}

// TestCertPrincipalMapping: a client certificate without a SPIFFE ID is
// its mapped principal when Config.CertPrincipals names its public key,
// and refused otherwise.
func TestCertPrincipalMapping(t *testing.T) {
	f := newFixture(t)
	ca := testca.New(t, "test CA")
	certFile, keyFile, caFile := serverFiles(t, ca)
	mapped, mk := issue(t, ca, 30, true)
	other, otherKey := issue(t, ca, 31, true)
	block, _ := pem.Decode(mapped)
	leaf, _ := x509.ParseCertificate(block.Bytes)
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	st, err := keystore.Open(f.dir, keystore.OpenOptions{Principal: owner, Passphrase: func() ([]byte, error) { return []byte("pw"), nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	srv := must(server.New(server.Config{Store: st, Region: "eu-west-1", CertPrincipals: map[string]string{hex.EncodeToString(sum[:]): "service:ops"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	base, _ := serveWith(t, srv, server.ListenConfig{TLSAddr: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	listKeys := func(certPEM, keyPEM []byte) string {
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}}}
		req, _ := http.NewRequest(http.MethodPost, "https://"+strings.TrimPrefix(base, "http://")+"/", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "TrentService.ListKeys")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct {
			Type string `json:"__type"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return e.Type
	}
	if code := listKeys(mapped, mk); code != "" {
		t.Errorf("mapped certificate (service:ops may list keys): %s", code)
	}
	if code := listKeys(other, otherKey); code != "UnrecognizedClientException" {
		t.Errorf("unmapped certificate without a SPIFFE ID: %q", code)
	}
}
