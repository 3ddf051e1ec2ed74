package policy

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// enumerate lists all strings over alphabet of length ≤ n.
func enumerate(alphabet string, n int) []string {
	out := []string{""}
	level := []string{""}
	for i := 0; i < n; i++ {
		var next []string
		for _, s := range level {
			for _, c := range alphabet {
				next = append(next, s+string(c))
			}
		}
		out = append(out, next...)
		level = next
	}
	return out
}

func randGlob(rng *rand.Rand, alphabet string, n int) string {
	var b strings.Builder
	for i := rng.Intn(n + 1); i > 0; i-- {
		switch r := rng.Intn(6); r {
		case 0:
			b.WriteByte('*')
		case 1:
			b.WriteByte('?')
		default:
			b.WriteByte(alphabet[rng.Intn(len(alphabet))])
		}
	}
	return b.String()
}

// TestGlobOracle compares wildMatch, globSubset and globIntersect with brute
// force over a small alphabet: subset must be sound, intersection exact and
// matching exact.
func TestGlobOracle(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	words := enumerate("abc", 8)
	subsets, trueSubsets := 0, 0
	for i := 0; i < 600; i++ {
		p, q := randGlob(rng, "ab", 4), randGlob(rng, "ab", 4)
		var inP, inBoth, pNotQ int
		for _, w := range words {
			mp, mq := wildMatch(p, w), wildMatch(q, w)
			if mp != naiveMatch(p, w) {
				t.Fatalf("wildMatch(%q,%q)=%v", p, w, mp)
			}
			if mp {
				inP++
			}
			if mp && mq {
				inBoth++
			}
			if mp && !mq {
				pNotQ++
			}
		}
		if globSubset(p, q, false) {
			subsets++
			if pNotQ > 0 {
				t.Fatalf("globSubset(%q,%q) claimed but a word of p is not in q", p, q)
			}
		}
		// Patterns have at most 4 symbols, so short words over the pattern
		// letters plus one other (c), up to 8 long, hold a witness of
		// non-containment or intersection.
		if pNotQ == 0 {
			trueSubsets++
		}
		if got := globIntersect(p, q); got != (inBoth > 0) {
			t.Fatalf("globIntersect(%q,%q)=%v, brute force %v", p, q, got, inBoth > 0)
		}
	}
	if subsets < trueSubsets*9/10 {
		t.Errorf("globSubset recognised %d of %d containments; too conservative", subsets, trueSubsets)
	}
	for _, c := range []struct {
		p, q string
		want bool
	}{{"key/a", "key/*", true}, {"key/*", "key/a*", false}, {"key/a?", "key/*", true}, {"key/*", "*", true}, {"?*", "*?", true}, {"key/ab", "key/a?", true}, {"key/a?", "key/ab", false}, {"*", "?*", false}} {
		if got := globSubset(c.p, c.q, false); got != c.want {
			t.Errorf("globSubset(%q,%q)=%v want %v", c.p, c.q, got, c.want)
		}
	}
}

// naiveMatch is an independent recursive matcher used as the oracle.
func naiveMatch(p, s string) bool {
	if p == "" {
		return s == ""
	}
	switch p[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if naiveMatch(p[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && naiveMatch(p[1:], s[1:])
	}
	return s != "" && s[0] == p[0] && naiveMatch(p[1:], s[1:])
}

var (
	propPrincipals = []string{"user:w", "user:x", "group:g", "*", "user:?", "service:s"}
	propActions    = []string{"keystack:Encrypt", "keystack:Decrypt", "keystack:*crypt", "keystack:*", "keystack:ReWrap", "keystack:PutPolicy"}
	propResources  = []string{"key/a", "key/b", "key/*", "key/a/v1", "key/?", "*", "key/a*", "policy"}
	// Conditions, with condition keys in several spellings (keys are
	// case-insensitive), IfExists and the set qualifiers.
	propConds = []string{"", "", "", `"StringEquals":{"keystack:EncryptionContext/d":"x"}`, `"NumericLessThan":{"keystack:KeyVersion":2}`,
		`"StringEquals":{"keystack:PrincipalTag/t":"1"}`, `"StringEquals":{"keystack:EncryptionContext/D":"x"}`,
		`"StringEquals":{"KEYSTACK:encryptioncontext/d":"x"}`, `"StringEquals":{"keystack:principaltag/T":"1"}`,
		`"StringEqualsIfExists":{"keystack:EncryptionContext/d":"x"}`, `"StringNotEqualsIfExists":{"keystack:ENCRYPTIONCONTEXT/D":"y"}`,
		`"ForAnyValue:StringEquals":{"keystack:EncryptionContextKeys":["d","e"]}`, `"ForAllValues:StringLike":{"KeyStack:EncryptionContextKeys":"d*"}`,
		`"ForAnyValue:StringEquals":{"keystack:EncryptionContext/d":"x"}`, `"ForAllValues:StringEquals":{"keystack:EncryptionContext/D":"x"}`}
	// propContexts spell the context key d in several ways, twice in one
	// context, with the same or different values.
	propContexts = []map[string]string{nil, {"d": "x"}, {"D": "x"}, {"d": "y"}, {"d": "x", "D": "y"}, {"D": "x", "d": "x"}, {"e": "x"}, {"d": "x", "e": "y"}}
)

func pick(rng *rand.Rand, xs []string, n int) string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("%q", xs[rng.Intn(len(xs))]))
	}
	return "[" + strings.Join(out, ",") + "]"
}

func randStatement(rng *rand.Rand, denyRate int) string {
	effect := "Allow"
	if rng.Intn(100) < denyRate {
		effect = "Deny"
	}
	pe, ae, re := "Principal", "Action", "Resource"
	if rng.Intn(8) == 0 {
		pe = "NotPrincipal"
	}
	if rng.Intn(6) == 0 {
		ae = "NotAction"
	}
	if rng.Intn(8) == 0 {
		re = "NotResource"
	}
	s := fmt.Sprintf(`{"Effect":%q,%q:%s,%q:%s,%q:%s`, effect, pe, pick(rng, propPrincipals, 1+rng.Intn(2)),
		ae, pick(rng, propActions, 1+rng.Intn(2)), re, pick(rng, propResources, 1+rng.Intn(2)))
	if c := propConds[rng.Intn(len(propConds))]; c != "" {
		if c2 := propConds[rng.Intn(len(propConds))]; c2 != "" && !strings.HasPrefix(c2, strings.SplitN(c, ":{", 2)[0]+":{") {
			c += "," + c2
		}
		s += `,"Condition":{` + c + `}`
	}
	return s + "}"
}

func randPolicy(t *testing.T, rng *rand.Rand, n, denyRate int) *Policy {
	var ss []string
	for i := 0; i < n; i++ {
		ss = append(ss, randStatement(rng, denyRate))
	}
	return mustParse(t, stmts(ss...))
}

// TestIsSubsetProperty: whenever IsSubset accepts next for writer W, every
// request (of any principal) that next allows is allowed to W by current
// for the same action, resource and request attributes.
func TestIsSubsetProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(42))
	writer := Identity{Principal: "user:w", Groups: []string{"g"}, Tags: map[string]string{"t": "1"}}
	principals := []string{"user:w", "user:x", "user:y", "service:s"}
	resources := []string{"key/a", "key/b", "key/c", "key/ab", "policy", "audit"}
	accepted, rejected, checked := 0, 0, 0
	for iter := 0; iter < 6000; iter++ {
		cur := randPolicy(t, rng, 1+rng.Intn(5), 25)
		next := randPolicy(t, rng, 1+rng.Intn(2), 10)
		if IsSubset(next, cur, writer) != nil {
			rejected++
			continue
		}
		accepted++
		for k := 0; k < 200; k++ {
			r := Request{
				Principal: principals[rng.Intn(len(principals))], Action: Actions[rng.Intn(len(Actions))],
				Resource: resources[rng.Intn(len(resources))], KeyVersion: rng.Intn(3),
				PrincipalTags: map[string]string{"t": fmt.Sprint(rng.Intn(2))},
			}
			if rng.Intn(2) == 0 {
				r.Groups = []string{"g"}
			}
			r.EncryptionContext = propContexts[rng.Intn(len(propContexts))]
			if !next.Evaluate(r).Allowed() {
				continue
			}
			checked++
			w := r
			w.Principal, w.Groups, w.PrincipalTags = writer.Principal, writer.Groups, writer.Tags
			if !cur.Evaluate(w).Allowed() {
				t.Fatalf("escalation: next allows %+v but current denies the writer\ncurrent=%v\nnext=%v", r, cur.Statement, next.Statement)
			}
		}
	}
	t.Logf("accepted %d rejected %d, checked %d allowed requests", accepted, rejected, checked)
	if accepted < 100 || rejected < 100 || checked < 500 {
		t.Fatalf("property test too weak: accepted %d rejected %d checked %d", accepted, rejected, checked)
	}
}

func TestIsSubsetRefusals(t *testing.T) {
	cur := mustParse(t, stmts(
		`{"Effect":"Allow","Principal":"user:w","Action":["keystack:Encrypt","keystack:Decrypt","keystack:PutPolicy"],"Resource":["key/app*","policy"]}`,
		`{"Effect":"Allow","Principal":"user:w","Action":"keystack:ReWrap","Resource":"key/*","Condition":{"StringEquals":{"keystack:EncryptionContext/env":"dev"}}}`,
		`{"Effect":"Allow","Principal":"*","Action":"keystack:DescribeKey","Resource":"key/*","Condition":{"StringEquals":{"keystack:PrincipalTag/role":"admin"}}}`,
		`{"Sid":"NoSecret","Effect":"Deny","Principal":"*","Action":"keystack:Decrypt","Resource":"key/app-secret"}`))
	w := Identity{Principal: "user:w", Tags: map[string]string{"role": "admin"}}
	cases := []struct {
		name, stmt string
		ok         bool
	}{
		{"narrower grant", `{"Effect":"Allow","Principal":"user:x","Action":"keystack:Encrypt","Resource":"key/app1"}`, true},
		{"same grant to everyone", `{"Effect":"Allow","Principal":"*","Action":"keystack:*crypt","Resource":"key/app-public"}`, true},
		{"broader resource", `{"Effect":"Allow","Principal":"user:x","Action":"keystack:Encrypt","Resource":"key/*"}`, false},
		{"action the writer lacks", `{"Effect":"Allow","Principal":"user:x","Action":"keystack:RotateKey","Resource":"key/app1"}`, false},
		{"wildcard action", `{"Effect":"Allow","Principal":"user:x","Action":"keystack:*","Resource":"key/app1"}`, false},
		{"NotAction", `{"Effect":"Allow","Principal":"user:x","NotAction":"keystack:Encrypt","Resource":"key/app1"}`, false},
		{"NotResource", `{"Effect":"Allow","Principal":"user:x","Action":"keystack:Encrypt","NotResource":"key/app1"}`, false},
		{"denied to the writer", `{"Effect":"Allow","Principal":"user:x","Action":"keystack:Decrypt","Resource":"key/app-*"}`, false},
		{"denied version", `{"Effect":"Allow","Principal":"user:x","Action":"keystack:Decrypt","Resource":"key/app-secret/v2"}`, false},
		{"condition dropped", `{"Effect":"Allow","Principal":"user:x","Action":"keystack:ReWrap","Resource":"key/a"}`, false},
		{"condition kept", `{"Effect":"Allow","Principal":"user:x","Action":"keystack:ReWrap","Resource":"key/a","Condition":{"StringEquals":{"keystack:EncryptionContext/env":"dev"},"NumericEquals":{"keystack:KeyVersion":1}}}`, true},
		{"writer's own tag condition holds", `{"Effect":"Allow","Principal":"user:x","Action":"keystack:DescribeKey","Resource":"key/k"}`, true},
		{"deny only", `{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}`, true},
	}
	for _, c := range cases {
		next := mustParse(t, stmts(c.stmt))
		err := IsSubset(next, cur, w)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrEscalation)) {
			t.Errorf("%s: err %v, want ok=%v", c.name, err, c.ok)
		}
	}
	describe := mustParse(t, stmts(`{"Effect":"Allow","Principal":"user:x","Action":"keystack:DescribeKey","Resource":"key/k"}`))
	if err := IsSubset(describe, cur, Identity{Principal: "user:w", Tags: map[string]string{"role": "dev"}}); !errors.Is(err, ErrEscalation) {
		t.Errorf("writer without the tag: %v", err)
	}
	if err := IsSubset(mustParse(t, stmts(cases[0].stmt)), nil, w); err == nil {
		t.Error("nil current policy must refuse every Allow")
	}
}

type memRecorder struct {
	decisions []Decision
	fail      error
}

func (m *memRecorder) RecordDecision(_ context.Context, _ Request, d Decision) error {
	if m.fail != nil {
		return m.fail
	}
	m.decisions = append(m.decisions, d)
	return nil
}

func TestEngine(t *testing.T) {
	p := mustParse(t, stmts(
		`{"Effect":"Allow","Principal":"group:admins","Action":"*","Resource":"*"}`,
		`{"Effect":"Allow","Principal":"*","Action":"keystack:Encrypt","Resource":"key/*","Condition":{"StringEquals":{"keystack:PrincipalTag/team":"pay"}}}`))
	rec := &memRecorder{}
	dir := StaticDirectory{Groups: map[string][]string{"user:root": {"admins"}}, Tags: map[string]map[string]string{"user:bob": {"team": "pay"}}}
	e, err := NewEngine(p, EngineConfig{Recorder: rec, Directory: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.Authorize(ctx, Request{Principal: "user:bob", Action: ActionEncrypt, Resource: "key/k"}); err != nil {
		t.Errorf("bob encrypt (tag from directory): %v", err)
	}
	err = e.Authorize(ctx, Request{Principal: "user:bob", Action: ActionDecrypt, Resource: "key/k"})
	var de *DeniedError
	if !errors.Is(err, ErrAccessDenied) || !errors.As(err, &de) || de.Principal != "user:bob" {
		t.Fatalf("bob decrypt: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "keystack:Decrypt") || !strings.Contains(msg, "key/k") || strings.Contains(msg, "team") || strings.Contains(msg, "Statement") {
		t.Errorf("denial text %q must name action/resource/principal and nothing of the policy", msg)
	}
	if len(rec.decisions) != 2 || !rec.decisions[0].Allowed() || rec.decisions[1].Allowed() {
		t.Errorf("recorded %+v", rec.decisions)
	}
	// Fail closed: an allowed request is refused when recording fails.
	rec.fail = errors.New("disk full")
	err = e.Authorize(ctx, Request{Principal: "user:root", Action: ActionEncrypt, Resource: "key/k"})
	if !errors.Is(err, ErrAuditFailed) || !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("recorder failure: %v", err)
	}
	rec.fail = nil
	// PutPolicy: bob lacks PutPolicy; root may not escalate beyond its grants.
	next := mustParse(t, stmts(`{"Effect":"Allow","Principal":"user:bob","Action":"keystack:Decrypt","Resource":"key/k"}`))
	if err := e.PutPolicy(ctx, Request{Principal: "user:bob"}, next, PutOptions{}); !errors.Is(err, ErrAccessDenied) {
		t.Errorf("bob PutPolicy: %v", err)
	}
	// Lockout: under next, root could not replace the policy again.
	if err := e.PutPolicy(ctx, Request{Principal: "user:root"}, next, PutOptions{}); !errors.Is(err, ErrLockout) || !errors.Is(err, ErrAccessDenied) {
		t.Errorf("root PutPolicy locking itself out: %v", err)
	}
	if e.Policy() != p {
		t.Error("policy swapped despite the lockout check")
	}
	if err := e.PutPolicy(ctx, Request{Principal: "user:root"}, next, PutOptions{BypassLockoutSafetyCheck: true}); err != nil {
		t.Errorf("root PutPolicy: %v", err)
	}
	if e.Policy() != next {
		t.Error("policy not swapped")
	}
	// Under next, root holds nothing, so it cannot grant anything back.
	if err := e.PutPolicy(ctx, Request{Principal: "user:root"}, p, PutOptions{}); !errors.Is(err, ErrAccessDenied) {
		t.Errorf("root re-escalation: %v", err)
	}
	if _, err := NewEngine(p, EngineConfig{}); err == nil {
		t.Error("NewEngine without a Recorder must fail")
	}
}

func BenchmarkEvaluate100Statements(b *testing.B) {
	var ss []string
	for i := 0; i < 99; i++ {
		ss = append(ss, fmt.Sprintf(`{"Sid":"S%d","Effect":"Allow","Principal":["user:u%d","group:g%d"],"Action":["keystack:Encrypt","keystack:Decrypt"],"Resource":"key/k%d*","Condition":{"StringEquals":{"keystack:EncryptionContext/dept":"d%d"}}}`, i, i, i, i, i))
	}
	ss = append(ss, `{"Sid":"Last","Effect":"Allow","Principal":"user:alice","Action":"keystack:Encrypt","Resource":"key/payments","Condition":{"StringEquals":{"keystack:EncryptionContext/dept":"finance"},"IpAddress":{"keystack:SourceIp":"10.0.0.0/8"}}}`)
	p := mustParse(b, stmts(ss...))
	req := base()
	if !p.Evaluate(req).Allowed() {
		b.Fatal("benchmark request must be allowed")
	}
	b.ReportAllocs()
	for b.Loop() {
		p.Evaluate(req)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}
