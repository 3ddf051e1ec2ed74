package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/rogpeppe/go-internal/testscript"
)

func init() {
	serverScriptCmds["xkscall"] = cmdXKSCall
	serverScriptCmds["xksdecryptbody"] = cmdXKSDecryptBody
	serverScriptCmds["xkspki"] = cmdXKSPKI
	serverScriptCmds["xksserver"] = cmdXKSServer
}

// cmdXKSCall runs "xkscall [-tls CA] [-cert CERT KEY] ADDR PATH
// ACCESS_KEY_ID SECRET BODYFILE": it signs BODYFILE as AWS KMS does
// (SigV4, service kms-xks-proxy, with aws-sdk-go-v2's signer), POSTs it to
// http://ADDR/PATH (https, trusting CA, with -tls; presenting the client
// certificate CERT with -cert) on a new connection and prints "status: N"
// and the response body. "! xkscall" expects no HTTP response (a refused
// TLS handshake) and prints the error.
func cmdXKSCall(ts *testscript.TestScript, neg bool, args []string) {
	scheme, tr := "http://", &http.Transport{DisableKeepAlives: true}
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		if scheme = "https://"; tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{}
		}
		switch {
		case args[0] == "-tls" && len(args) > 1:
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM([]byte(ts.ReadFile(args[1])))
			tr.TLSClientConfig.RootCAs, args = pool, args[2:]
		case args[0] == "-cert" && len(args) > 2:
			c, err := tls.LoadX509KeyPair(ts.MkAbs(args[1]), ts.MkAbs(args[2]))
			ts.Check(err)
			tr.TLSClientConfig.Certificates, args = []tls.Certificate{c}, args[3:]
		default:
			ts.Fatalf("xkscall: unknown option %s", args[0])
		}
	}
	if len(args) != 5 {
		ts.Fatalf("usage: xkscall [-tls CA] [-cert CERT KEY] ADDR PATH ACCESS_KEY_ID SECRET BODYFILE")
	}
	body := []byte(ts.ReadFile(args[4]))
	req, err := http.NewRequest(http.MethodPost, scheme+args[0]+args[1], bytes.NewReader(body))
	ts.Check(err)
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: args[2], SecretAccessKey: args[3]}
	ts.Check(v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kms-xks-proxy", "eu-west-1", time.Now()))
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if neg {
		if err == nil {
			resp.Body.Close()
			ts.Fatalf("xkscall: got HTTP status %d, want a refused connection", resp.StatusCode)
		}
		fmt.Fprintf(ts.Stdout(), "error: %v\n", err)
		return
	}
	ts.Check(err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "status: %d\n%s", resp.StatusCode, out)
}

// cmdXKSPKI runs "xkspki DIR": it writes PEM files to DIR: ca.pem (a CA),
// server.pem/server.key (for 127.0.0.1, from ca), and client certificate
// pairs as AWS KMS would present them: kms (ca, CN
// cks.kms.eu-west-1.amazonaws.com), otherca (the same CN from another
// CA), expired (ca, the CN, expired an hour ago), othercn (ca, CN
// evil.example).
func cmdXKSPKI(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: xkspki DIR")
	}
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o700))
	ca, other := newTestCA(ts), newTestCA(ts)
	write := func(name string, der []byte, key *ecdsa.PrivateKey) {
		ts.Check(os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
		if key != nil {
			kb, err := x509.MarshalECPrivateKey(key)
			ts.Check(err)
			ts.Check(os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
		}
	}
	write("ca", ca.cert.Raw, nil)
	const kms = "cks.kms.eu-west-1.amazonaws.com"
	now := time.Now()
	for name, spec := range map[string]struct {
		ca        *testCA
		cn        string
		notAfter  time.Time
		serverUse bool
	}{
		"server": {ca, "127.0.0.1", now.Add(time.Hour), true}, "kms": {ca, kms, now.Add(time.Hour), false},
		"otherca": {other, kms, now.Add(time.Hour), false}, "expired": {ca, kms, now.Add(-time.Hour), false},
		"othercn": {ca, "evil.example", now.Add(time.Hour), false},
	} {
		der, key := spec.ca.issue(ts, spec.cn, spec.notAfter, spec.serverUse)
		write(name, der, key)
	}
}

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(ts *testscript.TestScript) *testCA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ts.Check(err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "xks test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-3 * time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	ts.Check(err)
	c, err := x509.ParseCertificate(der)
	ts.Check(err)
	return &testCA{cert: c, key: key}
}

// issue returns a certificate for cn (a server certificate for the IP
// address cn when serverUse) valid until notAfter, and its key.
func (ca *testCA) issue(ts *testscript.TestScript, cn string, notAfter time.Time, serverUse bool) ([]byte, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ts.Check(err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	ts.Check(err)
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, NotBefore: notAfter.Add(-2 * time.Hour), NotAfter: notAfter}
	if serverUse {
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []net.IP{net.ParseIP(cn)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	ts.Check(err)
	return der, key
}

// cmdXKSDecryptBody runs "xksdecryptbody ENCRYPT_RESPONSE METADATA_JSON
// AAD_B64 OUT": it writes to OUT a decrypt request for what an encrypt
// response (as xkscall printed it) holds.
func cmdXKSDecryptBody(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: xksdecryptbody ENCRYPT_RESPONSE METADATA_JSON AAD_B64 OUT")
	}
	raw := []byte(ts.ReadFile(args[0]))
	var enc map[string]any
	ts.Check(json.Unmarshal(raw[bytes.IndexByte(raw, '\n')+1:], &enc))
	var meta map[string]any
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[1])), &meta))
	body := map[string]any{"requestMetadata": meta["requestMetadata"], "encryptionAlgorithm": "AES_GCM",
		"ciphertext": enc["ciphertext"], "ciphertextMetadata": enc["ciphertextMetadata"],
		"initializationVector": enc["initializationVector"], "authenticationTag": enc["authenticationTag"]}
	if args[2] != "-" {
		body["additionalAuthenticatedData"] = args[2]
	}
	out, err := json.Marshal(body)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[3]), out, 0o600))
}

// xksServers are the servers xksserver started, by script.
var xksServers sync.Map // *testscript.TestScript -> *xksServer

type xksServer struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
}

func (s *xksServer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.Write(p)
}

// await waits up to 30s for stderr to hold n lines matching one of subs.
func (s *xksServer) await(ts *testscript.TestScript, n int, subs ...string) {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		s.mu.Lock()
		out := s.stderr.String()
		s.mu.Unlock()
		got := 0
		for _, sub := range subs {
			got += strings.Count(out, sub)
		}
		if got >= n {
			return
		}
	}
	ts.Fatalf("xksserver: no %q in the server's stderr within 30s", subs)
}

// cmdXKSServer runs "xksserver start ARGS...", "xksserver hup" and
// "xksserver stop": start runs keystack server ARGS in the background
// and waits until it listens; hup sends it SIGHUP (as an operator's kill
// -HUP, which testscript's kill cannot send) and waits for the XKS
// configuration reload to be logged; stop sends SIGINT, waits for the
// exit and writes the server's stderr to stderr.
func cmdXKSServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: xksserver start ARGS... | hup | stop")
	}
	v, _ := xksServers.Load(ts)
	s, _ := v.(*xksServer)
	switch {
	case args[0] == "start" && s == nil:
		path, err := exec.LookPath("keystack")
		ts.Check(err)
		s = &xksServer{cmd: exec.Command(path, append([]string{"server"}, args[1:]...)...)}
		s.cmd.Dir = ts.MkAbs(".")
		s.cmd.Env = append(os.Environ(), "KEYSTACK_HOME="+ts.Getenv("KEYSTACK_HOME"), "KEYSTACK_PRINCIPAL="+ts.Getenv("KEYSTACK_PRINCIPAL"))
		s.cmd.Stderr = s
		ts.Check(s.cmd.Start())
		xksServers.Store(ts, s)
		ts.Defer(func() { _ = s.cmd.Process.Kill(); _ = s.cmd.Wait() })
		s.await(ts, 1, "keystack server listening")
	case args[0] == "hup" && s != nil:
		s.mu.Lock()
		n := strings.Count(s.stderr.String(), "xks configuration")
		s.mu.Unlock()
		ts.Check(s.cmd.Process.Signal(syscall.SIGHUP))
		s.await(ts, n+1, "xks configuration")
	case args[0] == "stop" && s != nil:
		ts.Check(s.cmd.Process.Signal(syscall.SIGINT))
		err := s.cmd.Wait()
		xksServers.Delete(ts)
		fmt.Fprint(ts.Stderr(), s.stderr.String())
		ts.Check(err)
	default:
		ts.Fatalf("xksserver: %s: no server started, or one already running", args[0])
	}
}
