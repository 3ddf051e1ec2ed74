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
	p, err := policy.New(policy.Version, []policy.Statement{{Sid: "OpsEncrypt", Effect: policy.Allow,
		Principal: policy.Values{"group:ops"}, Action: policy.Values{policy.ActionEncrypt}, Resource: policy.Values{"key/*"}}})
	if err != nil {
		panic(err)
	}
	e, err := policyengine.New(p, policyengine.Config{Recorder: printRecorder{}})
	if err != nil {
		panic(err)
	}
	req := policy.Request{Principal: "user:alice", Groups: []string{"ops"}, Action: policy.ActionEncrypt,
		Resource: "key/payments"}
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
