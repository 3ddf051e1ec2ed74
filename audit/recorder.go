package audit

import (
	"context"
	"fmt"
	"strings"

	"github.com/keystack/keystack/policy"
)

var _ policy.BatchRecorder = (*Log)(nil)

// maxReason bounds the denial reason copied into an entry.
const maxReason = 2048

// RecordDecision implements policy.Recorder: it appends a decision entry
// and fails closed like Append. For a denial the entry keeps the reason
// (which conditions failed), never shown to the requester.
func (l *Log) RecordDecision(ctx context.Context, req policy.Request, d policy.Decision) error {
	return l.Append(ctx, decisionRecord(req, d))
}

// RecordDecisions implements policy.BatchRecorder: one entry per decision,
// in order, written together like AppendAll.
func (l *Log) RecordDecisions(ctx context.Context, reqs []policy.Request, ds []policy.Decision) error {
	if len(reqs) != len(ds) {
		return fmt.Errorf("%w: %d requests for %d decisions", ErrWrite, len(reqs), len(ds))
	}
	rs := make([]Record, len(reqs))
	for i := range reqs {
		rs[i] = decisionRecord(reqs[i], ds[i])
	}
	return l.AppendAll(ctx, rs...)
}

func decisionRecord(req policy.Request, d policy.Decision) Record {
	r := Record{
		Type: TypeDecision, Principal: req.Principal, Action: req.Action, Resource: req.Resource,
		KeyVersion: req.KeyVersion, Decision: string(d.Effect), Implicit: d.Implicit,
		Statements: d.Matched, EncryptionContext: req.EncryptionContext,
	}
	if !d.Allowed() {
		r.Reason = reason(d)
	}
	return r
}

// reason keeps the decision's structured reasons (statements that applied
// or failed on a condition, refusals such as escalation), not the lines
// about statements that concern others; a decision built without Reasons
// keeps its Explanation.
func reason(d policy.Decision) string {
	lines := d.Explanation
	if len(d.Reasons) > 0 {
		lines = make([]string, 0, len(d.Reasons))
		for _, r := range d.Reasons {
			lines = append(lines, r.Text)
		}
	}
	var b strings.Builder
	for _, s := range lines {
		if b.Len()+len(s)+2 > maxReason {
			b.WriteString("; …")
			break
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s)
	}
	return b.String()
}
