package policy

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"testing"
)

// lastRecorder keeps the last decision recorded.
type lastRecorder struct {
	req Request
	d   Decision
}

func (l *lastRecorder) RecordDecision(_ context.Context, r Request, d Decision) error {
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
		e, err := NewEngine(randPolicy(t, rng, 1+rng.Intn(5), 25), EngineConfig{Directory: dir, Recorder: rec})
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 20; k++ {
			r := Request{Principal: principals[rng.Intn(len(principals))], Action: Actions[rng.Intn(len(Actions))],
				Resource: resources[rng.Intn(len(resources))], KeyVersion: rng.Intn(3),
				EncryptionContext: propContexts[rng.Intn(len(propContexts))], Time: t0}
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
