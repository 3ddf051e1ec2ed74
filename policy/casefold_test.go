package policy

import (
	"errors"
	"testing"
)

// TestCaseVariantEscalation is the attack of issue 11: a writer allowed to
// decrypt only tenant t1 rewrites its own condition with a case variant of
// the key, then decrypts a message whose context holds both spellings.
func TestCaseVariantEscalation(t *testing.T) {
	cur := mustParse(t, stmts(
		`{"Effect":"Allow","Principal":"user:m","Action":"keystack:PutPolicy","Resource":"policy"}`,
		`{"Effect":"Allow","Principal":"user:m","Action":"keystack:Decrypt","Resource":"key/k","Condition":{"StringEquals":{"keystack:EncryptionContext/tenant":"t1"}}}`))
	next := mustParse(t, stmts(
		`{"Effect":"Allow","Principal":"user:m","Action":"keystack:Decrypt","Resource":"key/k","Condition":{"StringEquals":{"keystack:EncryptionContext/TENANT":"t1"}}}`))
	w := Identity{Principal: "user:m"}
	for _, ec := range []map[string]string{
		{"tenant": "t2", "Tenant": "t1"},
		{"tenant": "t2", "TENANT": "t1"},
		{"Tenant": "t2", "TENANT": "t1"},
	} {
		r := Request{Principal: "user:m", Action: ActionDecrypt, Resource: "key/k", EncryptionContext: ec}
		if cur.Evaluate(r).Allowed() {
			t.Fatalf("%v: the current policy must not allow an ambiguous context", ec)
		}
		if IsSubset(next, cur, w) == nil && next.Evaluate(r).Allowed() {
			t.Fatalf("%v: escalation: IsSubset accepted a policy that allows what the current one denies", ec)
		}
	}
	// The same condition spelt in any case decides alike.
	for _, key := range []string{"keystack:EncryptionContext/TENANT", "KEYSTACK:encryptioncontext/Tenant"} {
		p := mustParse(t, stmts(`{"Effect":"Allow","Principal":"user:m","Action":"keystack:Decrypt","Resource":"key/k","Condition":{"StringEquals":{"`+key+`":"t1"}}}`))
		for ec, want := range map[string]bool{"t1": true, "T1": false, "t2": false} {
			r := Request{Principal: "user:m", Action: ActionDecrypt, Resource: "key/k", EncryptionContext: map[string]string{"tenant": ec}}
			if got := p.Evaluate(r).Allowed(); got != want {
				t.Errorf("%s with tenant=%s: allowed %v, want %v", key, ec, got, want)
			}
		}
	}
}

// TestConditionKeyTwice: one operator naming the same key in two spellings
// is refused (keys are case-insensitive, so the block is ambiguous).
func TestConditionKeyTwice(t *testing.T) {
	_, err := Parse([]byte(stmts(`{"Effect":"Allow","Principal":"user:m","Action":"keystack:Decrypt","Resource":"key/k","Condition":{"StringEquals":{"keystack:EncryptionContext/tenant":"t1","keystack:EncryptionContext/TENANT":"t2"}}}`)))
	if !errors.Is(err, ErrInvalidPolicy) {
		t.Fatalf("duplicate condition key: %v", err)
	}
}

// TestAmbiguousContextDeny: a context holding one key in two spellings with
// different values makes a Deny's condition on that key apply and an
// Allow's not, so neither spelling can be used to slip past a Deny.
func TestAmbiguousContextDeny(t *testing.T) {
	p := mustParse(t, stmts(
		`{"Effect":"Allow","Principal":"*","Action":"keystack:Encrypt","Resource":"*"}`,
		`{"Sid":"NoSecret","Effect":"Deny","Principal":"*","Action":"keystack:Encrypt","Resource":"*","Condition":{"StringEquals":{"keystack:EncryptionContext/tenant":"secret"}}}`))
	r := Request{Principal: "user:m", Action: ActionEncrypt, Resource: "key/k", EncryptionContext: map[string]string{"TENANT": "x", "tenant": "secret"}}
	if d := p.Evaluate(r); d.Allowed() || d.Implicit {
		t.Fatalf("ambiguous context slipped past the Deny: %+v", d)
	}
	r.EncryptionContext = map[string]string{"TENANT": "x", "tenant": "x"}
	if !p.Evaluate(r).Allowed() {
		t.Fatal("two spellings with one value are not ambiguous")
	}
}
