package main

import (
	"encoding/json"
	"os"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// serverScriptCmds are the testscript commands of the server scripts.
var serverScriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"waitsock":    cmdWaitSock,
	"secretnotin": cmdSecretNotIn,
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
