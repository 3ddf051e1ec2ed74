package policy

import (
	"slices"
	"strings"
)

// principalIndex narrows evaluation to the statements that can apply to a
// principal: those naming it (or one of its groups) literally, plus those
// with a wildcard principal or a NotPrincipal, which every request must
// try. It is built once, when the policy is compiled, so a decision over a
// large policy costs in proportion to the statements about the requester.
type principalIndex struct {
	byName map[string][]int
	always []int
}

func newPrincipalIndex(cs []cstatement) principalIndex {
	ix := principalIndex{byName: map[string][]int{}}
	for i := range cs {
		s := &cs[i]
		literal := !s.notPrincipal
		for _, g := range s.principals {
			literal = literal && g.literal
		}
		if !literal {
			ix.always = append(ix.always, i)
			continue
		}
		for _, g := range s.principals {
			if l := ix.byName[g.pat]; len(l) == 0 || l[len(l)-1] != i {
				ix.byName[g.pat] = append(l, i)
			}
		}
	}
	return ix
}

// candidates appends to buf, in statement order and without repeats, the
// statements that may apply to a request from identities.
func (ix *principalIndex) candidates(buf []int, identities []string) []int {
	buf = append(buf, ix.always...)
	for _, id := range identities {
		buf = append(buf, ix.byName[id]...)
	}
	slices.Sort(buf)
	return slices.Compact(buf)
}

// Decide is [Policy.Evaluate] without Reasons and Explanation: the same
// Effect, Implicit and Matched (TestDecideMatchesEvaluate), found by
// trying only the statements that can apply to the request's principal
// and groups. It is the enforcement path, which needs an explanation only
// for a denial; a nil or empty policy denies everything.
func (p *Policy) Decide(req Request) Decision { return p.decide(&req) }

func (p *Policy) decide(req *Request) Decision {
	d := Decision{Effect: Deny, Implicit: true}
	if p == nil {
		return d
	}
	var bufs evalBufs
	ev := makeEvalReq(req, &bufs)
	var buf [16]int
	var m matches
	for _, i := range p.index.candidates(buf[:0], ev.identities) {
		s := &p.compiled[i]
		if _, ok := s.applies(&ev); ok {
			m.add(s)
		}
	}
	m.conclude(&d)
	return d
}

// matches collects the statements that apply to a request, by effect.
type matches struct{ allows, denies []string }

func (m *matches) add(s *cstatement) {
	if s.effect == Deny {
		m.denies = append(m.denies, s.lbl)
	} else {
		m.allows = append(m.allows, s.lbl)
	}
}

// conclude applies IAM's rule to d: an explicit Deny wins, then an Allow;
// with neither, d stays an implicit deny. It reports whether any applied.
func (m *matches) conclude(d *Decision) bool {
	switch {
	case len(m.denies) > 0:
		d.Implicit, d.Matched = false, m.denies
	case len(m.allows) > 0:
		d.Effect, d.Implicit, d.Matched = Allow, false, m.allows
	default:
		return false
	}
	return true
}

// lowerActions holds the lower-case spelling of every action, so that
// requests naming an action as listed are matched without allocating.
var lowerActions = func() map[string]string {
	m := make(map[string]string, len(Actions))
	for _, a := range Actions {
		m[a] = strings.ToLower(a)
	}
	return m
}()

func lowerAction(a string) string {
	if l, ok := lowerActions[a]; ok {
		return l
	}
	return strings.ToLower(a)
}
