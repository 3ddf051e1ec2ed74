package policy_test

import (
	"fmt"

	"github.com/keystack/keystack/policy"
)

// A policy written in JSON, and a simulation of two requests under it:
// Decide is the enforcement path; Evaluate also says why.
func ExamplePolicy_Evaluate() {
	p, err := policy.Parse([]byte(`{
	  "Version": "2012-10-17",
	  "Statement": [{
	    "Sid": "OpsEncrypt",
	    "Effect": "Allow",
	    "Principal": "group:ops",
	    "Action": ["keystack:Encrypt", "keystack:GenerateDataKey"],
	    "Resource": "key/payments",
	    "Condition": {"StringEquals": {"keystack:EncryptionContext/dept": "finance"}}
	  }]
	}`))
	if err != nil {
		panic(err)
	}
	req := policy.Request{Principal: "user:alice", Groups: []string{"ops"}, Action: policy.ActionEncrypt,
		Resource: "key/payments", EncryptionContext: map[string]string{"dept": "finance"}}
	d := p.Decide(req)
	fmt.Println(d.Effect, d.Matched)
	req.EncryptionContext["dept"] = "hr"
	d = p.Evaluate(req)
	fmt.Println(d.Effect, d.Implicit)
	for _, r := range d.Reasons {
		if r.Kind == policy.ReasonCondition {
			fmt.Println(r.Statement, "fails", r.Condition)
		}
	}
	// Output:
	// Allow [OpsEncrypt]
	// Deny true
	// OpsEncrypt fails StringEquals["keystack:EncryptionContext/dept"]
}
