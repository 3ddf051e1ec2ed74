package main

import (
	"context"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/keystack/keystack/internal/kmstest"
)

// scriptKMS returns the script's kmstest server.
func scriptKMS(ts *testscript.TestScript) *kmstest.Server {
	srv, ok := kmsServers.Load(ts)
	if !ok {
		ts.Fatalf("kms: no server (run kms start first)")
	}
	return srv.(*kmstest.Server)
}

// kmsRequests runs "kms requests OP KEY...": the server saw exactly one OP
// request per KEY, naming those keys in that order.
func kmsRequests(ts *testscript.TestScript, srv *kmstest.Server, op string, want []string) {
	var got []string
	for _, r := range srv.Requests(op) {
		got = append(got, r.KeyID)
	}
	if !slices.Equal(got, want) {
		ts.Fatalf("kms: %s requests named %q, want %q", op, got, want)
	}
}

// kmsRotation runs "kms rotation KEY DAYS": the server reports automatic
// rotation of KEY (a key ARN) enabled with period DAYS, or off for DAYS 0,
// asked with GetKeyRotationStatus as an administrator would.
func kmsRotation(ts *testscript.TestScript, srv *kmstest.Server, key, days string) {
	want, err := strconv.Atoi(days)
	ts.Check(err)
	admin := kms.NewFromConfig(aws.Config{
		Region:      kmsTestRegion,
		Credentials: credentials.NewStaticCredentialsProvider(kmstest.AccessKeyID, kmstest.SecretAccessKey, ""),
	}, func(o *kms.Options) { o.BaseEndpoint = aws.String(srv.URL()) })
	st, err := admin.GetKeyRotationStatus(context.Background(), &kms.GetKeyRotationStatusInput{KeyId: aws.String(key)})
	ts.Check(err)
	if st.KeyRotationEnabled != (want > 0) || int(aws.ToInt32(st.RotationPeriodInDays)) != want {
		ts.Fatalf("kms: rotation of %s enabled=%v every %d days, want %d days", key,
			st.KeyRotationEnabled, aws.ToInt32(st.RotationPeriodInDays), want)
	}
}
