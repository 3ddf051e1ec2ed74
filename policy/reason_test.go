package policy

import (
	"reflect"
	"testing"
)

// TestDecisionReasons: the statements that bear on a decision yield one
// structured reason each, of the right kind, naming the statement (and the
// failed condition); the others only an Explanation line.
func TestDecisionReasons(t *testing.T) {
	p := mustParse(t, stmts(
		`{"Sid":"P","Effect":"Allow","Principal":"user:bob","Action":"keystack:Encrypt","Resource":"*"}`,
		`{"Sid":"A","Effect":"Allow","Principal":"*","Action":"keystack:Decrypt","Resource":"*"}`,
		`{"Sid":"R","Effect":"Allow","Principal":"*","Action":"keystack:Encrypt","Resource":"key/other"}`,
		`{"Sid":"C","Effect":"Allow","Principal":"*","Action":"keystack:Encrypt","Resource":"*","Condition":{"StringEquals":{"keystack:EncryptionContext/Dept":"hr"}}}`,
		`{"Effect":"Deny","Principal":"*","Action":"keystack:Encrypt","Resource":"key/payments"}`))
	d := p.Evaluate(base())
	want := []Reason{
		{Kind: ReasonCondition, Statement: "C", Condition: `StringEquals["keystack:EncryptionContext/Dept"]`},
		{Kind: ReasonApplies, Statement: "Statement[4]"},
	}
	if len(d.Reasons) != len(want) || len(d.Explanation) != 5 {
		t.Fatalf("reasons %+v, explanation %q", d.Reasons, d.Explanation)
	}
	for i, r := range d.Reasons {
		if d.Explanation[3+i] != r.Text || r.Text == "" {
			t.Errorf("reason %d text %q, explanation %q", i, r.Text, d.Explanation[3+i])
		}
		r.Text = ""
		if !reflect.DeepEqual(r, want[i]) {
			t.Errorf("reason %d = %+v, want %+v", i, r, want[i])
		}
	}
	none := mustParse(t, stmts(`{"Sid":"P","Effect":"Allow","Principal":"user:bob","Action":"*","Resource":"*"}`)).Evaluate(base())
	if last := none.Reasons[len(none.Reasons)-1]; last.Kind != ReasonNoStatement || !none.Implicit {
		t.Errorf("implicit deny: %+v", none)
	}
}
