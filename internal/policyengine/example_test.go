package policyengine_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/keystack/keystack/internal/policyengine"
	"github.com/keystack/keystack/policy"
)

type printRecorder struct{}

func (printRecorder) RecordDecision(_ context.Context, req policy.Request, d policy.Decision) error {
	fmt.Println("audit:", req.Principal, req.Action, d.Effect, d.Matched)
	return nil
}

func ExampleEngine_Authorize() {
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
	e, err := policyengine.New(p, policyengine.Config{Recorder: printRecorder{}})
	if err != nil {
		panic(err)
	}
	req := policy.Request{Principal: "user:alice", Groups: []string{"ops"}, Action: policy.ActionEncrypt,
		Resource: "key/payments", EncryptionContext: map[string]string{"dept": "finance"}}
	fmt.Println(e.Authorize(context.Background(), req))
	req.Action = policy.ActionDecrypt
	err = e.Authorize(context.Background(), req)
	fmt.Println(errors.Is(err, policy.ErrAccessDenied), err)
	// Output:
	// audit: user:alice keystack:Encrypt Allow [OpsEncrypt]
	// <nil>
	// audit: user:alice keystack:Decrypt Deny []
	// true policy: access denied: user:alice may not keystack:Decrypt on key/payments
}
