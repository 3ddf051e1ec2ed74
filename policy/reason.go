package policy

// ReasonKind classifies why a statement did or did not decide a request,
// so that consumers (the audit log, simulate) select reasons by kind, never
// by matching explanation text.
type ReasonKind uint8

// Reason kinds.
const (
	// reasonPrincipal, reasonAction and reasonResource: the statement does
	// not concern the request (its principal, action or resource differs).
	// They explain, but are never among a Decision's Reasons.
	reasonPrincipal ReasonKind = iota + 1
	reasonAction
	reasonResource
	// ReasonCondition: the statement concerns the request but one of its
	// conditions (Reason.Condition) does not hold.
	ReasonCondition
	// ReasonApplies: the statement applies with its effect.
	ReasonApplies
	// ReasonNoStatement: no statement applies, an implicit deny.
	ReasonNoStatement
	// ReasonRefused: a refusal outside evaluation (escalation, lockout).
	ReasonRefused
	// ReasonBreakGlass: the keystore owner's reset, authorized by the
	// passphrase rather than the policy.
	ReasonBreakGlass
)

// Reason is one structured reason for a decision; Text is its line in the
// decision's Explanation.
type Reason struct {
	Kind      ReasonKind
	Statement string // Sid, or "Statement[i]"; "" when no statement is meant
	Condition string // for ReasonCondition: Operator["key"] as written
	Text      string
}

// mismatch reports whether the reason only says that a statement does
// not concern the request, which tells nothing about why it was decided.
func (r Reason) mismatch() bool {
	return r.Kind == reasonPrincipal || r.Kind == reasonAction || r.Kind == reasonResource
}

// statementReasons are a statement's precomputed reasons, built when the
// policy is compiled so that evaluation does not allocate per statement.
type statementReasons struct{ principal, action, resource, applies Reason }

func newStatementReasons(label string, effect Effect) statementReasons {
	r := func(k ReasonKind, text string) Reason {
		return Reason{Kind: k, Statement: label, Text: label + ": " + text}
	}
	return statementReasons{
		principal: r(reasonPrincipal, "not applicable: principal does not match"),
		action:    r(reasonAction, "not applicable: action does not match"),
		resource:  r(reasonResource, "not applicable: resource does not match"),
		applies:   r(ReasonApplies, "applies: "+string(effect)),
	}
}
