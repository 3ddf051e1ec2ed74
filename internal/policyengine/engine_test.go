package policyengine

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keystack/keystack/internal/policytest"
	"github.com/keystack/keystack/policy"
)

// parse parses a policy document of the statements, or fails t.
func parse(t testing.TB, statements ...string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(`{"Version":"2012-10-17","Statement":[` + strings.Join(statements, ",") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// base: alice encrypts with key/payments v3 from 10.1.2.3 with a context.
func base() policy.Request {
	return policy.Request{
		Principal: "user:alice", Groups: []string{"ops"},
		PrincipalTags: map[string]string{"team": "payments"},
		Action:        policy.ActionEncrypt, Resource: "key/payments", KeyVersion: 3,
		EncryptionContext: map[string]string{"dept": "finance", "purpose": "invoice"},
		SourceIP:          netip.MustParseAddr("10.1.2.3"), Time: t0,
	}
}

type memRecorder struct {
	decisions []policy.Decision
	fail      error
}

func (m *memRecorder) RecordDecision(_ context.Context, _ policy.Request, d policy.Decision) error {
	if m.fail != nil {
		return m.fail
	}
	m.decisions = append(m.decisions, d)
	return nil
}

// TestRefusal: a refusal is a denial with its one reason.
func TestRefusal(t *testing.T) {
	if r := Refusal(policy.ReasonRefused, "x"); r.Allowed() || r.Reasons[0].Kind != policy.ReasonRefused || r.Explanation[0] != "x" {
		t.Errorf("Refusal: %+v", r)
	}
}

func TestEngine(t *testing.T) {
	p := parse(t,
		`{"Effect":"Allow","Principal":"group:admins","Action":"*","Resource":"*"}`,
		`{"Effect":"Allow","Principal":"*","Action":"keystack:Encrypt","Resource":"key/*","Condition":{"StringEquals":{"keystack:PrincipalTag/team":"pay"}}}`)
	rec := &memRecorder{}
	dir := StaticDirectory{Groups: map[string][]string{"user:root": {"admins"}}, Tags: map[string]map[string]string{"user:bob": {"team": "pay"}}}
	e, err := New(p, Config{Recorder: rec, Directory: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.Authorize(ctx, policy.Request{Principal: "user:bob", Action: policy.ActionEncrypt, Resource: "key/k"}); err != nil {
		t.Errorf("bob encrypt (tag from directory): %v", err)
	}
	err = e.Authorize(ctx, policy.Request{Principal: "user:bob", Action: policy.ActionDecrypt, Resource: "key/k"})
	var de *policy.DeniedError
	if !errors.Is(err, policy.ErrAccessDenied) || !errors.As(err, &de) || de.Principal != "user:bob" {
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
	err = e.Authorize(ctx, policy.Request{Principal: "user:root", Action: policy.ActionEncrypt, Resource: "key/k"})
	if !errors.Is(err, policy.ErrAuditFailed) || !errors.Is(err, policy.ErrAccessDenied) {
		t.Fatalf("recorder failure: %v", err)
	}
	rec.fail = nil
	// PutPolicy: bob lacks PutPolicy; root may not escalate beyond its grants.
	next := parse(t, `{"Effect":"Allow","Principal":"user:bob","Action":"keystack:Decrypt","Resource":"key/k"}`)
	if err := e.PutPolicy(ctx, policy.Request{Principal: "user:bob"}, next, policy.PutOptions{}); !errors.Is(err, policy.ErrAccessDenied) {
		t.Errorf("bob PutPolicy: %v", err)
	}
	// Lockout: under next, root could not replace the policy again.
	if err := e.PutPolicy(ctx, policy.Request{Principal: "user:root"}, next, policy.PutOptions{}); !errors.Is(err, policy.ErrLockout) || !errors.Is(err, policy.ErrAccessDenied) {
		t.Errorf("root PutPolicy locking itself out: %v", err)
	}
	if e.Policy() != p {
		t.Error("policy swapped despite the lockout check")
	}
	if err := e.PutPolicy(ctx, policy.Request{Principal: "user:root"}, next, policy.PutOptions{BypassLockoutSafetyCheck: true}); err != nil {
		t.Errorf("root PutPolicy: %v", err)
	}
	if e.Policy() != next {
		t.Error("policy not swapped")
	}
	// Under next, root holds nothing, so it cannot grant anything back.
	if err := e.PutPolicy(ctx, policy.Request{Principal: "user:root"}, p, policy.PutOptions{}); !errors.Is(err, policy.ErrAccessDenied) {
		t.Errorf("root re-escalation: %v", err)
	}
	if _, err := New(p, Config{}); err == nil {
		t.Error("NewEngine without a Recorder must fail")
	}
}

type batchRecorder struct {
	memRecorder
	writes int
	reqs   []policy.Request
}

func (b *batchRecorder) RecordDecisions(_ context.Context, reqs []policy.Request, ds []policy.Decision) error {
	if b.fail != nil {
		return b.fail
	}
	b.writes++
	b.reqs = append(b.reqs, reqs...)
	b.decisions = append(b.decisions, ds...)
	return nil
}

// TestAuthorizeAll: decisions are recorded in one write, in order, up to
// and including the first denial; a failed record refuses.
func TestAuthorizeAll(t *testing.T) {
	p := parse(t, `{"Sid":"Enc","Effect":"Allow","Principal":"user:alice","Action":["keystack:Encrypt","keystack:GenerateDataKey"],"Resource":"key/*"}`)
	rec := &batchRecorder{}
	e, err := New(p, Config{Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	gen, enc, dec := base(), base(), base()
	gen.Action, dec.Action = policy.ActionGenerateDataKey, policy.ActionDecrypt
	if err := e.AuthorizeAll(ctx, gen, enc); err != nil {
		t.Fatal(err)
	}
	if rec.writes != 1 || len(rec.decisions) != 2 || rec.reqs[0].Action != policy.ActionGenerateDataKey || !rec.decisions[1].Allowed() {
		t.Fatalf("allowed pair: %d writes, %+v", rec.writes, rec.decisions)
	}
	err = e.AuthorizeAll(ctx, enc, dec, gen)
	if !errors.Is(err, policy.ErrAccessDenied) {
		t.Fatalf("denied decrypt: %v", err)
	}
	if rec.writes != 2 || len(rec.decisions) != 4 || rec.decisions[3].Allowed() || len(rec.decisions[3].Explanation) == 0 {
		t.Fatalf("denied triple: %d writes, %+v", rec.writes, rec.decisions)
	}
	rec.fail = errors.New("disk full")
	if err := e.AuthorizeAll(ctx, gen, enc); !errors.Is(err, policy.ErrAuditFailed) {
		t.Fatalf("failed record: %v", err)
	}
}

// lastRecorder keeps the last decision recorded.
type lastRecorder struct {
	req policy.Request
	d   policy.Decision
}

func (l *lastRecorder) RecordDecision(_ context.Context, r policy.Request, d policy.Decision) error {
	l.req, l.d = r, d
	return nil
}

// TestSimulateMatchesAuthorize: for random policies, directories and
// requests (with and without tags and groups of their own), Simulate
// reaches the decision Authorize enforces and records: same effect, same
// implicitness, same deciding statements.
func TestSimulateMatchesAuthorize(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	principals := []string{"user:w", "user:x", "service:s"}
	resources := []string{"key/a", "key/b", "key/a/v1", "policy", "audit"}
	allowed, denied := 0, 0
	for iter := 0; iter < 1500; iter++ {
		dir := StaticDirectory{Groups: map[string][]string{}, Tags: map[string]map[string]string{}}
		for _, p := range principals {
			if rng.Intn(2) == 0 {
				dir.Groups[p] = []string{"g"}
			}
			if rng.Intn(2) == 0 {
				dir.Tags[p] = map[string]string{"t": fmt.Sprint(rng.Intn(2)), "T": fmt.Sprint(rng.Intn(2))}
			}
		}
		rec := &lastRecorder{}
		p, err := policy.Parse([]byte(policytest.RandomPolicy(rng, 1+rng.Intn(5), 25)))
		if err != nil {
			t.Fatal(err)
		}
		e, err := New(p, Config{Directory: dir, Recorder: rec})
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 20; k++ {
			r := policy.Request{Principal: principals[rng.Intn(len(principals))], Action: policy.Actions[rng.Intn(len(policy.Actions))],
				Resource: resources[rng.Intn(len(resources))], KeyVersion: rng.Intn(3),
				EncryptionContext: policytest.Contexts[rng.Intn(len(policytest.Contexts))], Time: t0}
			if rng.Intn(3) == 0 {
				r.PrincipalTags = map[string]string{"t": fmt.Sprint(rng.Intn(2))}
			}
			if rng.Intn(3) == 0 {
				r.Groups = []string{"g"}
			}
			sim := e.Simulate(r)
			err := e.Authorize(context.Background(), r)
			if sim.Allowed() != (err == nil) || sim.Effect != rec.d.Effect || sim.Implicit != rec.d.Implicit || !slices.Equal(sim.Matched, rec.d.Matched) {
				t.Fatalf("request %+v: simulate %+v, enforcement %+v (err %v)\npolicy %v\ndirectory %+v", r, sim, rec.d, err, e.Policy().Statement, dir)
			}
			if sim.Allowed() {
				allowed++
			} else {
				denied++
			}
		}
	}
	if allowed < 1000 || denied < 1000 {
		t.Fatalf("property test too weak: %d allowed, %d denied", allowed, denied)
	}
}
