package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/rogpeppe/go-internal/testscript"
)

func init() {
	serverScriptCmds["xkscall"] = cmdXKSCall
	serverScriptCmds["xksdecryptbody"] = cmdXKSDecryptBody
}

// cmdXKSCall runs "xkscall ADDR PATH ACCESS_KEY_ID SECRET BODYFILE": it
// signs BODYFILE as AWS KMS does (SigV4, service kms-xks-proxy, with
// aws-sdk-go-v2's signer), POSTs it to http://ADDR/PATH and prints
// "status: N" and the response body.
func cmdXKSCall(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 5 {
		ts.Fatalf("usage: xkscall ADDR PATH ACCESS_KEY_ID SECRET BODYFILE")
	}
	body := []byte(ts.ReadFile(args[4]))
	req, err := http.NewRequest(http.MethodPost, "http://"+args[0]+args[1], bytes.NewReader(body))
	ts.Check(err)
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: args[2], SecretAccessKey: args[3]}
	ts.Check(v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kms-xks-proxy", "eu-west-1", time.Now()))
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "status: %d\n%s", resp.StatusCode, out)
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
