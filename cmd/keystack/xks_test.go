package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
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
	"github.com/keystack/keystack/internal/testca"
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
	ca, other := testca.New(ts, "xks test CA"), testca.New(ts, "xks test CA")
	ts.Check(os.WriteFile(filepath.Join(dir, "ca.pem"), ca.PEM(), 0o600))
	const kms = "cks.kms.eu-west-1.amazonaws.com"
	now := time.Now()
	for name, spec := range map[string]struct {
		ca   *testca.CA
		leaf testca.Leaf
	}{
		"server": {ca, testca.Leaf{CN: "127.0.0.1", Server: true, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}},
		"kms":    {ca, testca.Leaf{CN: kms}}, "otherca": {other, testca.Leaf{CN: kms}},
		"expired": {ca, testca.Leaf{CN: kms, NotAfter: now.Add(-time.Hour)}}, "othercn": {ca, testca.Leaf{CN: "evil.example"}},
	} {
		cert, key := spec.ca.IssuePEM(ts, spec.leaf)
		ts.Check(os.WriteFile(filepath.Join(dir, name+".pem"), cert, 0o600))
		ts.Check(os.WriteFile(filepath.Join(dir, name+".key"), key, 0o600))
	}
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
