package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/server"
)

// jsServerPolicy lets service:billing use key "payments" only.
const jsServerPolicy = `{"Version":"2012-10-17","Statement":[
 {"Sid":"Owner","Effect":"Allow","Principal":"user:admin","Action":"keystack:*","Resource":"*"},
 {"Sid":"Billing","Effect":"Allow","Principal":"service:billing",
  "Action":["keystack:GenerateDataKey","keystack:Encrypt","keystack:Decrypt","keystack:DescribeKey"],"Resource":"key/payments"}]}`

// startKeyServer serves a new keystore with key "payments" on loopback
// and returns its endpoint and an access key for service:billing.
func startKeyServer(t *testing.T) (endpoint string, cred *keystore.Credential) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "server")
	st, err := keystore.Init(dir, keystore.InitOptions{Insecure: true, Owner: "user:admin"})
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	if err := os.WriteFile(filepath.Join(dir, "policy.json"), []byte(jsServerPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err = keystore.Open(dir, keystore.OpenOptions{Principal: "user:admin"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := st.CreateKey(ctx, "payments", keystore.CreateKeyOptions{}); err != nil {
		t.Fatal(err)
	}
	if cred, err = st.CreateCredential(ctx, "service:billing"); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	ready, done := make(chan []string, 1), make(chan error, 1)
	go func() {
		done <- srv.Serve(sctx, server.ListenConfig{HTTPAddr: "127.0.0.1:0", Ready: func(a []string) { ready <- a }})
	}()
	t.Cleanup(func() { cancel(); <-done; _ = st.Close() })
	select {
	case a := <-ready:
		return "http://" + a[0], cred
	case err := <-done:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("key server did not start")
	}
	return "", nil
}

// TestJSESDKThroughKeyServer: the official JavaScript ESDK's KMS keyring,
// its KMS client pointed at keystack server, writes messages keystack
// decrypts through the same server, and reads messages keystack writes.
func TestJSESDKThroughKeyServer(t *testing.T) {
	sdk := findJSESDK(t)
	endpoint, cred := startKeyServer(t)
	work := t.TempDir()
	for k, v := range map[string]string{
		"KEYSTACK_HOME": filepath.Join(work, "client"), "AWS_ENDPOINT_URL_KMS": endpoint, "KEYSTACK_KMS_ENDPOINT": endpoint,
		"AWS_ACCESS_KEY_ID": cred.AccessKeyID, "AWS_SECRET_ACCESS_KEY": cred.Secret, "AWS_SESSION_TOKEN": "",
		"AWS_REGION": server.DefaultRegion, "AWS_PROFILE": "", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": filepath.Join(work, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(work, "none"),
	} {
		t.Setenv(k, v)
	}
	if code, _, errOut := runKeystack("init", "--insecure-no-passphrase"); code != 0 {
		t.Fatalf("init: %s", errOut)
	}
	arn := "arn:aws:kms:" + server.DefaultRegion + ":" + server.DefaultAccount + ":key/payments"
	node := func(args ...string) {
		t.Helper()
		out, err := exec.Command(sdk.node, append([]string{filepath.Join(filepath.Dir(sdk.script), "kms.js"), sdk.modules}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("JS ESDK %s: %v\n%s", args[0], err, out)
		}
	}
	pt := filepath.Join(work, "plain")
	want := []byte("through the key server, both ways")
	if err := os.WriteFile(pt, want, 0o600); err != nil {
		t.Fatal(err)
	}
	js, ks := filepath.Join(work, "js.msg"), filepath.Join(work, "ks.msg")
	node("encrypt", arn, pt, js, `{"tenant":"acme"}`)
	if code, _, errOut := runKeystack("decrypt", "--discovery", "-c", "tenant=acme", "-i", js, "-o", js+".out"); code != 0 {
		t.Fatalf("keystack decrypt of the JS message: %s", errOut)
	}
	sameFile(t, js+".out", want)
	if code, _, errOut := runKeystack("encrypt", "-k", arn, "-c", "tenant=acme", "-i", pt, "-o", ks); code != 0 {
		t.Fatalf("keystack encrypt through the server: %s", errOut)
	}
	node("decrypt", arn, ks, ks+".out", `{"tenant":"acme"}`)
	sameFile(t, ks+".out", want)
}
