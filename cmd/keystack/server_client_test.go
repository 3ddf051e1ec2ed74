package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/keystack/keystack/internal/testca"
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
	ca := testca.New(ts, "test CA")
	ts.Check(os.WriteFile(filepath.Join(dir, "ca.pem"), ca.PEM(), 0o600))
	spiffe, err := url.Parse(args[1])
	ts.Check(err)
	for name, leaf := range map[string]testca.Leaf{
		"server": {CN: "server", Server: true, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}},
		"client": {CN: "client", URIs: []*url.URL{spiffe}},
	} {
		der, key := ca.Issue(ts, leaf)
		writePEM(ts, filepath.Join(dir, name+".pem"), "CERTIFICATE", der)
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		ts.Check(err)
		writePEM(ts, filepath.Join(dir, name+"-key.pem"), "PRIVATE KEY", kder)
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
