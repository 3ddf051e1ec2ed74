package policy

import (
	"math/rand"
	"slices"
	"testing"
)

// TestDecideMatchesEvaluate: the indexed enforcement path reaches the same
// decision, with the same matched statements in the same order, as the full
// evaluation over every statement, on random policies and requests.
func TestDecideMatchesEvaluate(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	principals := []string{"user:w", "user:x", "user:y", "service:s", "user:?"}
	groups := [][]string{nil, {"g"}, {"h", "g"}}
	actions := append([]string{"KEYSTACK:ENCRYPT", "keystack:encrypt"}, Actions...)
	resources := []string{"key/a", "key/b", "key/ab", "policy", "audit"}
	for i := 0; i < 200; i++ {
		p := randPolicy(t, rng, 1+rng.Intn(12), 30)
		for j := 0; j < 50; j++ {
			req := Request{
				Principal: principals[rng.Intn(len(principals))], Groups: groups[rng.Intn(len(groups))],
				Action: actions[rng.Intn(len(actions))], Resource: resources[rng.Intn(len(resources))],
				KeyVersion: rng.Intn(3), EncryptionContext: map[string]string{"d": []string{"x", "y"}[rng.Intn(2)]},
				PrincipalTags: map[string]string{"t": []string{"1", "2"}[rng.Intn(2)]},
			}
			want, got := p.Evaluate(req), p.decide(&req)
			if got.Effect != want.Effect || got.Implicit != want.Implicit || !slices.Equal(got.Matched, want.Matched) {
				t.Fatalf("policy %d request %+v: decide %+v, Evaluate %+v", i, req, got, want)
			}
		}
	}
	var nilPolicy *Policy
	if d := nilPolicy.decide(&Request{}); d.Allowed() {
		t.Fatal("nil policy allowed")
	}
	if d := (&Policy{Statement: []Statement{{Effect: Allow}}}).decide(&Request{Principal: "user:w"}); d.Allowed() {
		t.Fatal("uncompiled policy literal allowed")
	}
}

// BenchmarkDecide100Statements is BenchmarkEvaluate100Statements on the
// enforcement path (Engine.Authorize), which explains only denials and
// tries only the statements that can apply to the principal.
func BenchmarkDecide100Statements(b *testing.B) {
	p := hundredStatements(b)
	req := base()
	if !p.decide(&req).Allowed() {
		b.Fatal("benchmark request must be allowed")
	}
	b.ReportAllocs()
	for b.Loop() {
		p.decide(&req)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}
