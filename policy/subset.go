package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Identity is a principal with its groups and tags.
type Identity struct {
	Principal string
	Groups    []string
	Tags      map[string]string
}

func (id Identity) identities() []string {
	out := []string{id.Principal}
	for _, g := range id.Groups {
		out = append(out, "group:"+g)
	}
	return out
}

// IsSubset returns nil only if next grants nothing that writer is not itself
// allowed under current: for every request R (of any principal) that next
// allows, current allows the same action on the same resource to writer,
// with R's encryption context, key version, time and source address. It
// returns an error matching ErrEscalation otherwise.
//
// The check is sound and conservative. Each Allow statement of next is
// expanded to its concrete actions (NotAction included) and, for each of its
// Resource patterns p, current must contain an Allow statement that applies
// to writer, covers the action, has a Resource pattern containing p (glob
// containment), and whose conditions hold for writer: conditions on the
// principal's tags are evaluated on writer's tags, others must appear
// verbatim in the new statement. No Deny of current that
// could apply to writer (conditions are assumed true) may overlap p. An
// Allow with NotResource in next is refused. Conditions in next only narrow
// a grant, so they are ignored.
func IsSubset(next, current *Policy, writer Identity) error {
	if next == nil {
		return nil
	}
	ids := writer.identities()
	self := newEvalReq(&Request{Principal: writer.Principal, Groups: writer.Groups, PrincipalTags: writer.Tags})
	for i := range next.compiled {
		s := &next.compiled[i]
		if s.effect != Allow {
			continue
		}
		if s.notResource {
			return fmt.Errorf("%w: %s: an Allow with NotResource cannot be checked; list resources", ErrEscalation, s.label())
		}
		for _, a := range concreteActions(s) {
			for _, r := range s.resources {
				if !allowCovers(current, ids, self, a, r.pat, s) {
					return fmt.Errorf("%w: %s: %s may not grant %s on %s", ErrEscalation, s.label(), writer.Principal, a, r.pat)
				}
				if sid, ok := denyMayApply(current, ids, a, r.pat); ok {
					return fmt.Errorf("%w: %s: %s on %s is denied to %s (%s)", ErrEscalation, s.label(), a, r.pat, writer.Principal, sid)
				}
			}
		}
	}
	return nil
}

func concreteActions(s *cstatement) []string {
	var out []string
	for _, a := range Actions {
		if anyMatch(s.actions, []string{strings.ToLower(a)}) != s.notAction {
			out = append(out, a)
		}
	}
	return out
}

func (s *cstatement) appliesTo(ids []string, action string) bool {
	return anyMatch(s.principals, ids) != s.notPrincipal &&
		anyMatch(s.actions, []string{strings.ToLower(action)}) != s.notAction
}

func allowCovers(cur *Policy, ids []string, self *evalReq, action, p string, granted *cstatement) bool {
	if cur == nil {
		return false
	}
	for i := range cur.compiled {
		t := &cur.compiled[i]
		if t.effect != Allow || t.notResource || !t.appliesTo(ids, action) || !condsImplied(t, granted, self) {
			continue
		}
		for _, q := range t.resources {
			if globSubset(p, q.pat, false) {
				return true
			}
		}
	}
	return false
}

// condsImplied reports whether every condition of t holds for the writer
// whenever s's conditions hold: principal-tag conditions are evaluated on
// the writer's own tags; any other must appear verbatim in s.
func condsImplied(t, s *cstatement, self *evalReq) bool {
	for _, c := range t.conds {
		if c.kind == keyPrincipalTag {
			if !c.holds(self, Allow) {
				return false
			}
			continue
		}
		found := slices.ContainsFunc(s.conds, func(d ccond) bool {
			return d.name == c.name && d.norm == c.norm && slices.Equal(d.raw, c.raw)
		})
		if !found {
			return false
		}
	}
	return true
}

// denyMayApply reports whether some Deny of cur could refuse writer action
// on a resource matched by p. A request for version n of key b matches both
// "b" and "b/vn", so p and each deny pattern d are also compared with a
// "/v*" suffix on either side.
func denyMayApply(cur *Policy, ids []string, action, p string) (string, bool) {
	if cur == nil {
		return "", false
	}
	for i := range cur.compiled {
		d := &cur.compiled[i]
		if d.effect != Deny || !d.appliesTo(ids, action) {
			continue
		}
		if d.notResource {
			if !slices.ContainsFunc(d.resources, func(nr glob) bool { return globSubset(p, nr.pat, false) }) {
				return d.label(), true
			}
			continue
		}
		for _, r := range d.resources {
			if globIntersect(p, r.pat) || globIntersect(p, r.pat+"/v*") || globIntersect(p+"/v*", r.pat) {
				return d.label(), true
			}
		}
	}
	return "", false
}
