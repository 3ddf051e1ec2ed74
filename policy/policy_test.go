package policy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func mustParse(t testing.TB, doc string) *Policy {
	t.Helper()
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

func stmts(s ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(s, ",") + `]}`
}

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// alice encrypts with key/payments v3 from 10.1.2.3 with a context.
func base() Request {
	return Request{
		Principal: "user:alice", Groups: []string{"ops"},
		PrincipalTags: map[string]string{"team": "payments"},
		Action:        ActionEncrypt, Resource: "key/payments", KeyVersion: 3,
		EncryptionContext: map[string]string{"dept": "finance", "purpose": "invoice"},
		SourceIP:          netip.MustParseAddr("10.1.2.3"), Time: t0,
	}
}

func with(f func(*Request)) Request { r := base(); f(&r); return r }

// TestEvaluate is a table in the style of the IAM evaluation examples: each
// case is a policy and the requests it must allow (true) or deny (false).
func TestEvaluate(t *testing.T) {
	allowAll := `{"Effect":"Allow","Principal":"*","Action":"keystack:*","Resource":"*"}`
	cases := []struct {
		name   string
		policy string
		reqs   map[string]Request
		want   map[string]bool
	}{
		{"0 empty policy denies all", stmts(), map[string]Request{"enc": base(), "list": with(func(r *Request) { r.Action = ActionListKeys })}, map[string]bool{"enc": false, "list": false}},
		{"allow all", stmts(allowAll), map[string]Request{"enc": base()}, map[string]bool{"enc": true}},
		{"deny overrides allow", stmts(allowAll, `{"Sid":"NoDecrypt","Effect":"Deny","Principal":"*","Action":"keystack:Decrypt","Resource":"key/*"}`),
			map[string]Request{"enc": base(), "dec": with(func(r *Request) { r.Action = ActionDecrypt })}, map[string]bool{"enc": true, "dec": false}},
		{"action case-insensitive", stmts(`{"Effect":"Allow","Principal":"user:alice","Action":"KEYSTACK:encrypt","Resource":"key/payments"}`),
			map[string]Request{"enc": base(), "dec": with(func(r *Request) { r.Action = ActionDecrypt })}, map[string]bool{"enc": true, "dec": false}},
		{"resource case-sensitive", stmts(`{"Effect":"Allow","Principal":"user:alice","Action":"keystack:Encrypt","Resource":"key/Payments"}`),
			map[string]Request{"enc": base()}, map[string]bool{"enc": false}},
		{"wildcards * and ?", stmts(`{"Effect":"Allow","Principal":"user:al?ce","Action":"keystack:*crypt","Resource":"key/pay*"}`),
			map[string]Request{"enc": base(), "dec": with(func(r *Request) { r.Action = ActionDecrypt }), "gen": with(func(r *Request) { r.Action = ActionGenerateDataKey }),
				"bob": with(func(r *Request) { r.Principal = "user:bob"; r.Groups = nil }), "alfce": with(func(r *Request) { r.Principal = "user:alffce" }), "other": with(func(r *Request) { r.Resource = "key/hr" })},
			map[string]bool{"enc": true, "dec": true, "gen": false, "bob": false, "alfce": false, "other": false}},
		{"key version resource", stmts(`{"Effect":"Allow","Principal":"*","Action":"keystack:Decrypt","Resource":"key/payments/v3"}`),
			map[string]Request{"v3": with(func(r *Request) { r.Action = ActionDecrypt }), "v4": with(func(r *Request) { r.Action = ActionDecrypt; r.KeyVersion = 4 }), "none": with(func(r *Request) { r.Action = ActionDecrypt; r.KeyVersion = 0 })},
			map[string]bool{"v3": true, "v4": false, "none": false}},
		{"NotAction", stmts(`{"Effect":"Allow","Principal":"*","NotAction":["keystack:PutPolicy","keystack:ScheduleKeyDeletion"],"Resource":"*"}`),
			map[string]Request{"enc": base(), "put": with(func(r *Request) { r.Action = ActionPutPolicy; r.Resource = ResourcePolicy })},
			map[string]bool{"enc": true, "put": false}},
		{"NotResource deny", stmts(allowAll, `{"Effect":"Deny","Principal":"*","Action":"keystack:Encrypt","NotResource":"key/payments"}`),
			map[string]Request{"enc": base(), "hr": with(func(r *Request) { r.Resource = "key/hr" })}, map[string]bool{"enc": true, "hr": false}},
		{"NotPrincipal deny", stmts(allowAll, `{"Effect":"Deny","NotPrincipal":["user:admin","group:sec"],"Action":"keystack:*Key*","Resource":"*"}`),
			map[string]Request{"alice": with(func(r *Request) { r.Action = ActionRotateKey }), "admin": with(func(r *Request) { r.Action = ActionRotateKey; r.Principal = "user:admin" }),
				"sec": with(func(r *Request) { r.Action = ActionRotateKey; r.Groups = []string{"sec"} })},
			map[string]bool{"alice": false, "admin": true, "sec": true}},
		{"group principal", stmts(`{"Effect":"Allow","Principal":"group:ops","Action":"keystack:Encrypt","Resource":"key/*"}`),
			map[string]Request{"member": base(), "nonmember": with(func(r *Request) { r.Groups = []string{"dev"} })}, map[string]bool{"member": true, "nonmember": false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustParse(t, c.policy)
			if len(c.reqs) != len(c.want) {
				t.Fatal("bad table")
			}
			for name, req := range c.reqs {
				d := p.Evaluate(req)
				if d.Allowed() != c.want[name] {
					t.Errorf("%s: allowed=%v, want %v; %v", name, d.Allowed(), c.want[name], d.Explanation)
				}
			}
		})
	}
}

func TestDecisionDetails(t *testing.T) {
	p := mustParse(t, stmts(
		`{"Sid":"A","Effect":"Allow","Principal":"*","Action":"keystack:*","Resource":"*"}`,
		`{"Sid":"D","Effect":"Deny","Principal":"*","Action":"keystack:Encrypt","Resource":"*","Condition":{"StringEquals":{"keystack:EncryptionContext/dept":"hr"}}}`))
	d := p.Evaluate(base())
	if !d.Allowed() || d.Implicit || len(d.Matched) != 1 || d.Matched[0] != "A" {
		t.Fatalf("decision %+v", d)
	}
	if len(d.Explanation) != 2 || !strings.Contains(d.Explanation[1], `StringEquals["keystack:EncryptionContext/dept"] not satisfied`) {
		t.Fatalf("explanation %q", d.Explanation)
	}
	d = p.Evaluate(with(func(r *Request) { r.EncryptionContext["dept"] = "hr" }))
	if d.Allowed() || d.Implicit || d.Matched[0] != "D" {
		t.Fatalf("decision %+v", d)
	}
	d = mustParse(t, stmts()).Evaluate(base())
	if d.Allowed() || !d.Implicit || len(d.Matched) != 0 {
		t.Fatalf("empty policy decision %+v", d)
	}
	if d := (*Policy)(nil).Evaluate(base()); d.Allowed() || !d.Implicit {
		t.Fatalf("nil policy decision %+v", d)
	}
}

// conditionCase is a condition under an Allow statement, a request and
// whether the statement should allow it.
type conditionCase struct {
	cond string
	req  Request
	want bool
}

// TestConditions checks every operator with one matching and one failing
// request, under an Allow statement.
func TestConditions(t *testing.T) {
	cases := append(stringNumericConditions(), otherConditions()...)
	seen := map[string]bool{}
	for i, c := range cases {
		p := mustParse(t, stmts(`{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{`+c.cond+`}}`))
		if got := p.Evaluate(c.req).Allowed(); got != c.want {
			t.Errorf("case %d %s: allowed=%v want %v %v", i, c.cond, got, c.want, p.Evaluate(c.req).Explanation)
		}
		for op := range p.Statement[0].Condition {
			seen[op] = true
		}
	}
	for op := range operators {
		if !seen[op] {
			t.Errorf("operator %s not covered", op)
		}
	}
}

func stringNumericConditions() []conditionCase {
	noEC := with(func(r *Request) { r.EncryptionContext = nil })
	return []conditionCase{
		{`"StringEquals":{"keystack:EncryptionContext/dept":["hr","finance"]}`, base(), true},
		{`"StringEquals":{"keystack:EncryptionContext/dept":"hr"}`, base(), false},
		{`"StringEquals":{"KEYSTACK:encryptioncontext/DEPT":"finance"}`, base(), true},
		{`"StringEquals":{"keystack:EncryptionContext/dept":"FINANCE"}`, base(), false},
		{`"StringNotEquals":{"keystack:EncryptionContext/dept":"hr"}`, base(), true},
		{`"StringNotEquals":{"keystack:EncryptionContext/dept":"finance"}`, base(), false},
		{`"StringNotEquals":{"keystack:EncryptionContext/dept":"finance"}`, noEC, true},
		{`"StringEqualsIgnoreCase":{"keystack:EncryptionContext/dept":"FINANCE"}`, base(), true},
		{`"StringNotEqualsIgnoreCase":{"keystack:EncryptionContext/dept":"FINANCE"}`, base(), false},
		{`"StringLike":{"keystack:EncryptionContext/purpose":"inv*"}`, base(), true},
		{`"StringLike":{"keystack:EncryptionContext/purpose":"?nvoic"}`, base(), false},
		{`"StringNotLike":{"keystack:EncryptionContext/purpose":"inv*"}`, base(), false},
		{`"StringNotLike":{"keystack:EncryptionContext/purpose":"pay*"}`, base(), true},
		{`"StringEquals":{"keystack:EncryptionContext/dept":"finance"}`, noEC, false},
		{`"StringEqualsIfExists":{"keystack:EncryptionContext/dept":"finance"}`, noEC, true},
		{`"StringEqualsIfExists":{"keystack:EncryptionContext/dept":"hr"}`, base(), false},
		{`"NumericEquals":{"keystack:KeyVersion":3}`, base(), true},
		{`"NumericEquals":{"keystack:KeyVersion":"4"}`, base(), false},
		{`"NumericNotEquals":{"keystack:KeyVersion":4}`, base(), true},
		{`"NumericNotEquals":{"keystack:KeyVersion":3}`, base(), false},
		{`"NumericLessThan":{"keystack:KeyVersion":4}`, base(), true},
		{`"NumericLessThan":{"keystack:KeyVersion":3}`, base(), false},
		{`"NumericLessThanEquals":{"keystack:KeyVersion":3}`, base(), true},
		{`"NumericLessThanEquals":{"keystack:KeyVersion":2.5}`, base(), false},
		{`"NumericGreaterThan":{"keystack:KeyVersion":2}`, base(), true},
		{`"NumericGreaterThan":{"keystack:KeyVersion":3}`, base(), false},
		{`"NumericGreaterThanEquals":{"keystack:KeyVersion":3}`, base(), true},
		{`"NumericGreaterThanEquals":{"keystack:KeyVersion":4}`, base(), false},
		{`"NumericGreaterThanEquals":{"keystack:KeyVersion":1}`, with(func(r *Request) { r.KeyVersion = 0 }), false},
		{`"NumericGreaterThanEqualsIfExists":{"keystack:KeyVersion":5}`, with(func(r *Request) { r.KeyVersion = 0 }), true},
		{`"NumericEquals":{"keystack:EncryptionContext/dept":1}`, base(), false},
	}
}

func otherConditions() []conditionCase {
	noEC := with(func(r *Request) { r.EncryptionContext = nil })
	return []conditionCase{
		{`"DateEquals":{"keystack:CurrentTime":"2026-06-01T12:00:00Z"}`, base(), true},
		{`"DateNotEquals":{"keystack:CurrentTime":"2026-06-01T12:00:00Z"}`, base(), false},
		{`"DateLessThan":{"keystack:CurrentTime":"2026-06-02T00:00:00Z"}`, base(), true},
		{`"DateLessThan":{"keystack:CurrentTime":"2026-06-01T12:00:00Z"}`, base(), false},
		{`"DateLessThanEquals":{"keystack:CurrentTime":"2026-06-01T12:00:00Z"}`, base(), true},
		{`"DateGreaterThan":{"keystack:CurrentTime":"2026-06-01"}`, base(), true},
		{`"DateGreaterThan":{"keystack:CurrentTime":1893456000}`, base(), false},
		{`"DateGreaterThanEquals":{"keystack:CurrentTime":"2026-06-01T12:00:00+00:00"}`, base(), true},
		{`"DateGreaterThanEquals":{"keystack:CurrentTime":"2026-06-01T12:00:01Z"}`, base(), false},
		{`"Bool":{"keystack:EncryptionContext/signed":"true"}`, with(func(r *Request) { r.EncryptionContext["signed"] = "true" }), true},
		{`"Bool":{"keystack:EncryptionContext/signed":true}`, with(func(r *Request) { r.EncryptionContext["signed"] = "false" }), false},
		{`"IpAddress":{"keystack:SourceIp":["192.168.0.0/16","10.0.0.0/8"]}`, base(), true},
		{`"IpAddress":{"keystack:SourceIp":"10.1.2.4"}`, base(), false},
		{`"IpAddress":{"keystack:SourceIp":"10.0.0.0/8"}`, with(func(r *Request) { r.SourceIP = netip.MustParseAddr("::ffff:10.9.9.9") }), true},
		{`"IpAddress":{"keystack:SourceIp":"2001:db8::/32"}`, with(func(r *Request) { r.SourceIP = netip.MustParseAddr("2001:db8::1") }), true},
		{`"IpAddress":{"keystack:SourceIp":"10.0.0.0/8"}`, with(func(r *Request) { r.SourceIP = netip.Addr{} }), false},
		{`"NotIpAddress":{"keystack:SourceIp":"10.0.0.0/8"}`, base(), false},
		{`"NotIpAddress":{"keystack:SourceIp":"192.168.0.0/16"}`, base(), true},
		{`"Null":{"keystack:EncryptionContext/dept":"false"}`, base(), true},
		{`"Null":{"keystack:EncryptionContext/dept":"true"}`, base(), false},
		{`"Null":{"keystack:EncryptionContextKeys":"true"}`, noEC, true},
		{`"StringEquals":{"keystack:PrincipalTag/team":"payments"}`, base(), true},
		{`"StringEquals":{"keystack:PrincipalTag/team":"hr"}`, base(), false},
		{`"ForAllValues:StringEquals":{"keystack:EncryptionContextKeys":["dept","purpose","x"]}`, base(), true},
		{`"ForAllValues:StringEquals":{"keystack:EncryptionContextKeys":["dept"]}`, base(), false},
		{`"ForAllValues:StringEquals":{"keystack:EncryptionContextKeys":["dept"]}`, noEC, true},
		{`"ForAnyValue:StringEquals":{"keystack:EncryptionContextKeys":["dept"]}`, base(), true},
		{`"ForAnyValue:StringEquals":{"keystack:EncryptionContextKeys":["nope"]}`, base(), false},
		{`"ForAnyValue:StringEquals":{"keystack:EncryptionContextKeys":["dept"]}`, noEC, false},
		{`"ForAnyValue:StringLike":{"keystack:EncryptionContextKeys":"pur*"}`, base(), true},
		{`"ForAllValues:StringNotEquals":{"keystack:EncryptionContextKeys":"secret"}`, base(), true},
		{`"ForAllValues:StringNotEquals":{"keystack:EncryptionContextKeys":"dept"}`, base(), false},
		// Keys and operators are ANDed; values ORed.
		{`"StringEquals":{"keystack:EncryptionContext/dept":"finance","keystack:PrincipalTag/team":"payments"},"NumericEquals":{"keystack:KeyVersion":[1,3]}`, base(), true},
		{`"StringEquals":{"keystack:EncryptionContext/dept":"finance","keystack:PrincipalTag/team":"hr"}`, base(), false},
	}
}

func TestValidationErrors(t *testing.T) {
	ok := `{"Effect":"Allow","Principal":"*","Action":"keystack:Encrypt","Resource":"key/a"}`
	cases := []struct{ doc, path, msg string }{
		{`{"Version":"2008-10-17","Statement":[]}`, "Version", "unsupported version"},
		{stmts(ok, `{"Effect":"Allow","Principal":"*","Action":"keystack:Frobnicate","Resource":"key/a"}`), "Statement[1].Action[0]", "unknown action"},
		{stmts(`{"Effect":"Allow","Principal":"*","Action":["keystack:Encrypt","kms:*"],"Resource":"key/a"}`), "Statement[0].Action[1]", "matches no action"},
		{stmts(`{"Effect":"Permit","Principal":"*","Action":"*","Resource":"key/a"}`), "Statement[0].Effect", "neither Allow nor Deny"},
		{stmts(`{"Effect":"Allow","Principal":"alice","Action":"*","Resource":"key/a"}`), "Statement[0].Principal[0]", "is not *"},
		{stmts(`{"Effect":"Allow","Principal":"*","Action":"*","NotAction":"*","Resource":"key/a"}`), "Statement[0]", "both Action and NotAction"},
		{stmts(`{"Effect":"Allow","Principal":"*","Action":"*"}`), "Statement[0]", "one of Resource or NotResource"},
		{stmts(`{"Effect":"Allow","Principal":"*","Action":"*","Resource":"secrets/a"}`), "Statement[0].Resource[0]", "is not key/"},
		{stmts(ok, ok, `{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"DateLessThan":{"keystack:CurrentTime":"tomorrow"}}}`),
			`Statement[2].Condition.DateLessThan["keystack:CurrentTime"][0]`, "bad date"},
		{stmts(`{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"IpAddress":{"keystack:SourceIp":["10.0.0.0/8","10.0.0.0/33"]}}}`),
			`Statement[0].Condition.IpAddress["keystack:SourceIp"][1]`, "bad CIDR"},
		{stmts(`{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"NumericLessThan":{"keystack:KeyVersion":"three"}}}`),
			`Statement[0].Condition.NumericLessThan["keystack:KeyVersion"][0]`, "bad number"},
		{stmts(`{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringSortOf":{"keystack:KeyVersion":"1"}}}`),
			`Statement[0].Condition.StringSortOf["keystack:KeyVersion"]`, "unknown condition operator"},
		{stmts(`{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:SourceIp":"1"}}}`),
			`Statement[0].Condition.StringEquals["aws:SourceIp"]`, "unknown condition key"},
		{stmts(`{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEquals":{"keystack:EncryptionContextKeys":"a"}}}`),
			`Statement[0].Condition.StringEquals["keystack:EncryptionContextKeys"]`, "ForAllValues"},
		{stmts(`{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"Bool":{"keystack:EncryptionContext/x":"yes"}}}`),
			`Statement[0].Condition.Bool["keystack:EncryptionContext/x"][0]`, "bad boolean"},
		{`{"Version":"2012-10-17","Statement":[],"Extra":1}`, "", "unknown field"},
		{`{"Version":"2012-10-17","Statement":[]} {}`, "", "trailing data"},
		{stmts(`{"Effect":"Allow","Principal":{"AWS":"x"},"Action":"*","Resource":"*"}`), "", "malformed JSON"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.doc))
		var ve *ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("%s: err %v, want *ValidationError", c.doc, err)
			continue
		}
		if ve.Path != c.path || !strings.Contains(ve.Msg, c.msg) {
			t.Errorf("%s: got path %q msg %q; want path %q msg containing %q", c.doc, ve.Path, ve.Msg, c.path, c.msg)
		}
	}
	if _, err := Parse(make([]byte, MaxPolicySize+1)); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("oversized policy: %v", err)
	}
}

func TestRoundTripAndDefault(t *testing.T) {
	p, err := DefaultPolicy("user:owner")
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	q := mustParse(t, string(b))
	for _, a := range Actions {
		owner := Request{Principal: "user:owner", Action: a, Resource: "key/x"}
		other := Request{Principal: "user:mallory", Action: a, Resource: "key/x"}
		if !q.Evaluate(owner).Allowed() || q.Evaluate(other).Allowed() {
			t.Errorf("default policy for %s: owner %v other %v", a, q.Evaluate(owner).Allowed(), q.Evaluate(other).Allowed())
		}
	}
}
