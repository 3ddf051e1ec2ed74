package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// serverScriptCmds are the testscript commands of the server scripts.
var serverScriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"waitsock":    cmdWaitSock,
	"secretnotin": cmdSecretNotIn,
	"freeport":    cmdFreePort,
	"waithttp":    cmdWaitHTTP,
	"ksclient":    cmdKSClient,
	"kmsload":     cmdKMSLoad,
	"kscreds":     cmdKSCreds,  // server_client_test.go
	"gencerts":    cmdGenCerts, // server_client_test.go
	"waittcp":     cmdWaitTCP,  // server_client_test.go
}

// cmdFreePort runs "freeport VAR": VAR becomes a loopback address
// (127.0.0.1:PORT) where nothing listens, for a server to bind.
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Setenv(args[0], ln.Addr().String())
	ts.Check(ln.Close())
}

// cmdWaitHTTP runs "waithttp ADDR": it waits up to 30 s for a key server
// at http://ADDR to answer /healthz.
func cmdWaitHTTP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waithttp ADDR")
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + args[0] + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("waithttp: no server at %s within 30s", args[0])
}

// cmdKSClient runs "ksclient CRED.json ADDR": later commands reach the key
// server at http://ADDR as an AWS KMS endpoint with the access key of
// CRED.json (from `server credentials create --json`; its ID is also
// $KS_ACCESS_KEY_ID), and never the machine's AWS configuration.
func cmdKSClient(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: ksclient CRED.json ADDR")
	}
	var cred struct {
		ID     string `json:"access_key_id"`
		Secret string `json:"secret_access_key"`
	}
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &cred))
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_KMS": "http://" + args[1], "AWS_ACCESS_KEY_ID": cred.ID, "AWS_SECRET_ACCESS_KEY": cred.Secret,
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": ts.MkAbs("no-aws-config"), "AWS_SHARED_CREDENTIALS_FILE": ts.MkAbs("no-aws-credentials"),
		"KS_ACCESS_KEY_ID": cred.ID,
	} {
		ts.Setenv(k, v)
	}
}

// cmdWaitSock runs "waitsock PATH": it waits up to 30 s for a Unix
// socket at PATH (a server started in the background listening).
func cmdWaitSock(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitsock PATH")
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if fi, err := os.Stat(ts.MkAbs(args[0])); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("waitsock: no socket at %s within 30s", args[0])
}

// cmdSecretNotIn runs "secretnotin CRED.json FILE": FILE must not hold
// the secret_access_key of the credentials JSON.
func cmdSecretNotIn(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: secretnotin CRED.json FILE")
	}
	var cred struct {
		Secret string `json:"secret_access_key"`
	}
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &cred))
	if len(cred.Secret) < 20 {
		ts.Fatalf("secretnotin: no secret in %s", args[0])
	}
	if strings.Contains(ts.ReadFile(args[1]), cred.Secret) {
		ts.Fatalf("%s holds the secret in clear", args[1])
	}
}
