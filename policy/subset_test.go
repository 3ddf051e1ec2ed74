package policy

import (
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/keystack/keystack/internal/policytest"
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

func randPolicy(t *testing.T, rng *rand.Rand, n, denyRate int) *Policy {
	return mustParse(t, policytest.RandomPolicy(rng, n, denyRate))
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
			r.EncryptionContext = policytest.Contexts[rng.Intn(len(policytest.Contexts))]
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

// hundredStatements is the benchmarks' policy: 99 statements for other
// principals, then the one that allows base().
func hundredStatements(b *testing.B) *Policy {
	var ss []string
	for i := 0; i < 99; i++ {
		ss = append(ss, fmt.Sprintf(`{"Sid":"S%d","Effect":"Allow","Principal":["user:u%d","group:g%d"],"Action":["keystack:Encrypt","keystack:Decrypt"],"Resource":"key/k%d*","Condition":{"StringEquals":{"keystack:EncryptionContext/dept":"d%d"}}}`, i, i, i, i, i))
	}
	ss = append(ss, `{"Sid":"Last","Effect":"Allow","Principal":"user:alice","Action":"keystack:Encrypt","Resource":"key/payments","Condition":{"StringEquals":{"keystack:EncryptionContext/dept":"finance"},"IpAddress":{"keystack:SourceIp":"10.0.0.0/8"}}}`)
	return mustParse(b, stmts(ss...))
}

func BenchmarkEvaluate100Statements(b *testing.B) {
	p := hundredStatements(b)
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
