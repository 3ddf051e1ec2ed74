package policy

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/keystack/keystack/internal/keyname"
)

// Request is one access request. Principal is "user:…", "service:…" or the
// like; Groups lists the groups it belongs to (without the "group:" prefix).
// Resource is "key/<name>", "policy" or "audit"; KeyVersion (0 = none)
// selects a key version, matched as "key/<name>/v<n>" too. A zero Time or an
// invalid SourceIP makes the corresponding condition key absent.
type Request struct {
	Principal         string
	Groups            []string
	PrincipalTags     map[string]string
	Action            string
	Resource          string
	KeyVersion        int
	EncryptionContext map[string]string
	SourceIP          netip.Addr
	Time              time.Time
	// ResourceTags are the tags of the key acted on (keystack:ResourceTag/…).
	ResourceTags map[string]string
	// AuthMethod is how the key server authenticated the principal
	// ("sigv4", "mtls", "unix"; keystack:AuthMethod), empty locally.
	AuthMethod string
	// XKS holds an AWS KMS XKS proxy request's requestMetadata fields
	// (keystack:xks/FIELD); empty fields are absent.
	XKS map[string]string
	// RequestID identifies the key server request; it is audited, never
	// a condition.
	RequestID string
}

// Decision is the outcome of Evaluate. Matched lists the Sids (or
// "Statement[i]" when a statement has no Sid) that decided it. Reasons are
// the structured reasons that bear on it: each statement that applied or
// failed on a condition, an implicit deny, a refusal; consumers select
// them by kind, never by text. Explanation has a line for every statement,
// those about other principals, actions or resources included. None may
// be shown to the requester: they reveal the policy.
type Decision struct {
	Effect      Effect
	Implicit    bool
	Matched     []string
	Reasons     []Reason
	Explanation []string
}

// explain adds r to the decision's explanation, and to its reasons unless
// r only says that a statement does not concern the request.
func (d *Decision) explain(r Reason) {
	if !r.mismatch() {
		d.Reasons = append(d.Reasons, r)
	}
	d.Explanation = append(d.Explanation, r.Text)
}

// Allowed reports whether the decision allows the request.
func (d Decision) Allowed() bool { return d.Effect == Allow }

// Evaluate decides req under the IAM evaluation logic: an applicable Deny
// statement denies, else an applicable Allow statement allows, else the
// request is implicitly denied. A nil or empty policy denies everything.
func (p *Policy) Evaluate(req Request) Decision {
	d := Decision{Effect: Deny, Implicit: true}
	if p == nil {
		d.explain(Reason{Kind: ReasonNoStatement, Text: "no policy: implicit deny"})
		return d
	}
	ev := newEvalReq(&req)
	d.Explanation = make([]string, 0, len(p.compiled)+1)
	var m matches
	for i := range p.compiled {
		s := &p.compiled[i]
		why, ok := s.applies(ev)
		d.explain(why)
		if ok {
			m.add(s)
		}
	}
	if !m.conclude(&d) {
		d.explain(Reason{Kind: ReasonNoStatement, Text: "no statement applies: implicit deny"})
	}
	return d
}

func (s *cstatement) label() string { return s.lbl }

// evalReq is a Request with derived values computed once.
type evalReq struct {
	*Request
	action     string // lower-case
	action1    [1]string
	identities []string
	resources  []string
}

// evalBufs back an evalReq's slices for the common request, so that the
// enforcement path can keep both on its stack.
type evalBufs struct {
	ids [4]string
	res [2]string
}

func newEvalReq(r *Request) *evalReq {
	ev := makeEvalReq(r, new(evalBufs))
	return &ev
}

// makeEvalReq returns r's evalReq by value, so that the enforcement path
// can keep it, r and b on its stack.
func makeEvalReq(r *Request, b *evalBufs) evalReq {
	ev := evalReq{Request: r, action: lowerAction(r.Action)}
	ev.action1[0] = ev.action
	ev.identities = append(b.ids[:0], r.Principal)
	for _, g := range r.Groups {
		ev.identities = append(ev.identities, "group:"+g)
	}
	ev.resources = append(b.res[:0], r.Resource)
	if r.KeyVersion > 0 {
		ev.resources = append(ev.resources, keyname.Versioned(r.Resource, r.KeyVersion))
	}
	return ev
}

// applies reports whether the statement applies to the request, with the
// reason; reasons are built at compile time so that evaluation does not
// allocate per statement.
func (s *cstatement) applies(ev *evalReq) (Reason, bool) {
	if anyMatch(s.principals, ev.identities) == s.notPrincipal {
		return s.msgs.principal, false
	}
	if anyMatch(s.actions, ev.action1[:]) == s.notAction {
		return s.msgs.action, false
	}
	if anyMatch(s.resources, ev.resources) == s.notResource {
		return s.msgs.resource, false
	}
	for i := range s.conds {
		if c := &s.conds[i]; !c.holds(ev, s.effect) {
			return c.failed, false
		}
	}
	return s.msgs.applies, true
}

func anyMatch(globs []glob, subjects []string) bool {
	for _, g := range globs {
		for _, s := range subjects {
			if g.match(s) {
				return true
			}
		}
	}
	return false
}

// lookup returns the request's values for the condition key, whether the
// key is present, and whether it is ambiguous: the encryption context or
// the tags hold the key in two spellings with different values. A single
// value is returned in one, so that the common keys cost no allocation.
func (c *ccond) lookup(ev *evalReq, one *[1]string) (vals []string, present, ambiguous bool) {
	switch c.kind {
	case keyContext:
		one[0], present, ambiguous = lookupFold(ev.EncryptionContext, c.sub)
		return one[:], present, ambiguous
	case keyPrincipalTag:
		one[0], present, ambiguous = lookupFold(ev.PrincipalTags, c.sub)
		return one[:], present, ambiguous
	case keyResourceTag:
		one[0], present, ambiguous = lookupFold(ev.ResourceTags, c.sub)
		return one[:], present, ambiguous
	case keyXKS:
		one[0], present, ambiguous = lookupFold(ev.XKS, c.sub)
		return one[:], present && one[0] != "", ambiguous
	case keyAuthMethod:
		one[0] = ev.AuthMethod
		return one[:], ev.AuthMethod != "", false
	case keyContextKeys:
		keys := make([]string, 0, len(ev.EncryptionContext))
		for k := range ev.EncryptionContext {
			keys = append(keys, k)
		}
		return keys, len(keys) > 0, false
	case keyVersion:
		return []string{strconv.Itoa(ev.KeyVersion)}, ev.KeyVersion > 0, false
	case keyTime:
		return []string{ev.Time.UTC().Format(time.RFC3339Nano)}, !ev.Time.IsZero(), false
	case keySourceIP:
		return []string{ev.SourceIP.String()}, ev.SourceIP.IsValid(), false
	}
	return nil, false, false
}

// lookupFold finds the lower-case key lk in m case-insensitively, because
// IAM condition key names are case-insensitive: the result depends on lk
// alone, never on how a policy spelt the key, so that evaluation and
// IsSubset agree on every spelling. When m holds lk in several spellings
// with different values the lookup is ambiguous.
func lookupFold(m map[string]string, lk string) (v string, present, ambiguous bool) {
	for k, mv := range m {
		if !strings.EqualFold(k, lk) {
			continue
		}
		if present && mv != v {
			return "", true, true
		}
		v, present = mv, true
	}
	return v, present, false
}

// holds reports whether the condition holds for a statement of effect: a
// condition on an ambiguous key holds for a Deny and not for an Allow, so
// a context spelling a key twice can neither slip past a Deny nor gain an
// Allow.
func (c *ccond) holds(ev *evalReq, effect Effect) bool {
	var one [1]string
	vals, present, ambiguous := c.lookup(ev, &one)
	if ambiguous {
		return effect == Deny
	}
	return c.test(vals, present)
}

// test applies IAM semantics: values in the condition are ORed; a negated
// operator is true when no value matches; an absent key satisfies IfExists,
// negated operators and ForAllValues, and nothing else.
func (c *ccond) test(vals []string, present bool) bool {
	if c.op.kind == opNull {
		for _, v := range c.raw {
			if (v == "true") == !present {
				return true
			}
		}
		return false
	}
	if !present {
		switch {
		case c.set == setForAll:
			return true
		case c.set == setForAny:
			return false
		}
		return c.ifExists || c.op.negated
	}
	test := func(v string) bool { return c.matchAny(v) != c.op.negated }
	switch c.set {
	case setForAll:
		for _, v := range vals {
			if !test(v) {
				return false
			}
		}
		return true
	case setForAny:
		for _, v := range vals {
			if test(v) {
				return true
			}
		}
		return false
	}
	return test(vals[0])
}

// matchAny reports whether v matches any condition value under the
// operator's positive sense.
func (c *ccond) matchAny(v string) bool {
	switch c.op.kind {
	case opString:
		for _, w := range c.raw {
			if v == w {
				return true
			}
		}
	case opStringFold:
		for _, w := range c.raw {
			if strings.EqualFold(v, w) {
				return true
			}
		}
	case opStringLike:
		return anyMatch(c.globs, []string{v})
	case opBool:
		for _, w := range c.raw {
			if strings.EqualFold(v, w) {
				return true
			}
		}
	case opNumeric:
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return false
		}
		for _, w := range c.nums {
			if compare(cmpOrder(n, w), c.op.cmp) {
				return true
			}
		}
	case opDate:
		t, ok := parseDate(v)
		if !ok {
			return false
		}
		for _, w := range c.times {
			if compare(t.Compare(w), c.op.cmp) {
				return true
			}
		}
	case opIP:
		a, err := netip.ParseAddr(v)
		if err != nil {
			return false
		}
		for _, p := range c.prefixes {
			if p.Contains(a.Unmap()) || p.Contains(a) {
				return true
			}
		}
	}
	return false
}

func cmpOrder(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compare(order int, k cmpKind) bool {
	switch k {
	case cmpLT:
		return order < 0
	case cmpLE:
		return order <= 0
	case cmpGT:
		return order > 0
	case cmpGE:
		return order >= 0
	}
	return order == 0
}
