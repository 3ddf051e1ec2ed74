package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// adminPolicy has no Deny statement, so that the conservative escalation
// check (policy.IsSubset) can prove the owner's changes.
const adminPolicy = `{"Version":"2012-10-17","Statement":[
 {"Sid":"Owner","Effect":"Allow","Principal":"user:alice","Action":"keystack:*","Resource":"*"},
 {"Sid":"Billing","Effect":"Allow","Principal":"service:billing","Action":["keystack:Encrypt","keystack:Decrypt"],"Resource":"key/*"},
 {"Sid":"BillingPuts","Effect":"Allow","Principal":"service:billing","Action":"keystack:PutPolicy","Resource":"policy"},
 {"Sid":"Ops","Effect":"Allow","Principal":"service:ops","Action":["keystack:ListKeys","keystack:DescribeKey"],"Resource":"*"}]}`

// admin posts a signed KeystackAdmin.<op> request as principal and
// returns the status, the error name (if any) and the decoded answer.
func (f *fixture) admin(t *testing.T, principal, op string, in any) (int, string, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, f.url+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "KeystackAdmin."+op)
	c := f.creds[principal]
	sum := sha256.Sum256(body)
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.Secret},
		req, hex.EncodeToString(sum[:]), "kms", "eu-west-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	code, _ := out["__type"].(string)
	return resp.StatusCode, code, out
}

// TestAdminAPI: policy and credentials administration over the same
// protocol, decided for the caller: a principal can neither widen its own
// grant nor read or issue credentials it is not granted; the owner can,
// and cannot lock itself out by mistake.
func TestAdminAPI(t *testing.T) {
	ctx := context.Background()
	f := newFixtureWith(t, adminPolicy)
	widen := strings.Replace(adminPolicy, `"Action":["keystack:Encrypt",`, `"Action":["keystack:*","keystack:Encrypt",`, 1)
	denied := []struct {
		op string
		in any
	}{
		{"GetPolicy", struct{}{}},
		{"PutPolicy", map[string]any{"Policy": widen}},
		{"SimulatePolicy", map[string]any{"Principal": "user:alice", "Action": "keystack:Decrypt", "Resource": "key/x"}},
		{"VerifyAudit", struct{}{}},
		{"ListCredentials", map[string]any{"Principal": "service:ops"}},
		{"ListCredentials", map[string]any{"Principal": "service:billing"}},
		{"CreateCredentials", map[string]any{"Principal": "service:billing"}},
		{"CreateCredentials", map[string]any{"Principal": "user:alice"}},
		{"RevokeCredentials", map[string]any{"AccessKeyId": f.creds["service:ops"].AccessKeyID}},
	}
	for _, d := range denied {
		if st, code, _ := f.admin(t, "service:billing", d.op, d.in); st != 400 || code != "AccessDeniedException" {
			t.Errorf("billing %s: %d %s, want AccessDeniedException", d.op, st, code)
		}
	}
	if _, code, out := f.admin(t, owner, "GetPolicy", struct{}{}); code != "" || !strings.Contains(out["Policy"].(string), "service:ops") {
		t.Errorf("owner GetPolicy: %s %v", code, out)
	}
	noOwnerPut := strings.Replace(adminPolicy, `"Action":"keystack:*","Resource":"*"},`, `"NotAction":"keystack:PutPolicy","Resource":"*"},`, 1)
	if _, code, _ := f.admin(t, owner, "PutPolicy", map[string]any{"Policy": noOwnerPut}); code != "MalformedPolicyDocumentException" {
		t.Errorf("owner locking itself out: %s", code)
	}
	if _, code, _ := f.admin(t, owner, "PutPolicy", map[string]any{"Policy": "{"}); code != "MalformedPolicyDocumentException" {
		t.Errorf("malformed policy: %s", code)
	}
	grant := strings.Replace(adminPolicy, `"Action":["keystack:Encrypt",`, `"Action":["keystack:GenerateRandom","keystack:Encrypt",`, 1)
	grant = strings.Replace(grant, `"Resource":"key/*"}`, `"Resource":["key/*","random"]}`, 1)
	if _, code, msg := f.admin(t, owner, "PutPolicy", map[string]any{"Policy": grant}); code != "" {
		t.Fatalf("owner PutPolicy: %s %v", code, msg)
	}
	if _, err := f.client("service:billing").GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(4)}); err != nil {
		t.Errorf("the new policy is not in force: %v", err)
	}
	_, code, sim := f.admin(t, owner, "SimulatePolicy", map[string]any{"Principal": "service:ops", "Action": "keystack:Encrypt", "Resource": "key/k"})
	if code != "" || sim["Decision"] != "Deny" {
		t.Errorf("simulate: %s %v", code, sim)
	}
	_, code, created := f.admin(t, owner, "CreateCredentials", map[string]any{"Principal": "service:new"})
	secret, _ := created["SecretAccessKey"].(string)
	if code != "" || len(secret) < 30 {
		t.Fatalf("CreateCredentials: %s %v", code, created)
	}
	_, code, list := f.admin(t, owner, "ListCredentials", map[string]any{"Principal": "service:new"})
	if raw, _ := json.Marshal(list); code != "" || strings.Contains(string(raw), secret) || !strings.Contains(string(raw), created["AccessKeyId"].(string)) {
		t.Errorf("ListCredentials: %s %s", code, raw)
	}
	_, err := clientFor(f.url, created["AccessKeyId"].(string), secret).ListKeys(ctx, &kms.ListKeysInput{})
	wantCode(t, "a new principal with no grant", err, "AccessDeniedException")
	if _, code, v := f.admin(t, owner, "VerifyAudit", struct{}{}); code != "" || v["Valid"] != true {
		t.Errorf("VerifyAudit: %s %v", code, v)
	}
	// billing holds PutPolicy: it may write a policy within its own
	// grants (it was refused above only for widening them).
	own := `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":"service:billing","Action":"keystack:Encrypt","Resource":"key/*"},
	 {"Effect":"Allow","Principal":"service:billing","Action":"keystack:PutPolicy","Resource":"policy"}]}`
	if _, code, out := f.admin(t, "service:billing", "PutPolicy", map[string]any{"Policy": own}); code != "" {
		t.Errorf("billing writing a policy within its grants: %s %v", code, out)
	}
}
