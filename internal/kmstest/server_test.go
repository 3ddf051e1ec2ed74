package kmstest_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/keystack/keystack/internal/kmstest"
)

// client returns a real SDK client for region pointed at s.
func client(s *kmstest.Server, region string, creds aws.CredentialsProvider) *kms.Client {
	if creds == nil {
		creds = credentials.NewStaticCredentialsProvider(kmstest.AccessKeyID, kmstest.SecretAccessKey, "")
	}
	return kms.New(kms.Options{
		Region:           region,
		Credentials:      creds,
		BaseEndpoint:     aws.String(s.URL()),
		RetryMaxAttempts: 1,
	})
}

func apiCode(t *testing.T, err error) string {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an API error, got %v", err)
	}
	return ae.ErrorCode()
}

func createKey(t *testing.T, c *kms.Client, mrk bool) *types.KeyMetadata {
	t.Helper()
	out, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{MultiRegion: aws.Bool(mrk)})
	if err != nil {
		t.Fatal(err)
	}
	return out.KeyMetadata
}

func TestCreateDescribeAlias(t *testing.T) {
	s := kmstest.NewServer(kmstest.WithAccountID("444455556666"))
	defer s.Close()
	c := client(s, "eu-west-1", nil)
	ctx := context.Background()
	md := createKey(t, c, false)
	wantARN := "arn:aws:kms:eu-west-1:444455556666:key/" + *md.KeyId
	if *md.Arn != wantARN || md.KeyState != types.KeyStateEnabled {
		t.Fatalf("metadata %s %s", *md.Arn, md.KeyState)
	}
	if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: md.KeyId}); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{*md.KeyId, wantARN, "alias/app", "arn:aws:kms:eu-west-1:444455556666:alias/app"} {
		d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(ref)})
		if err != nil || *d.KeyMetadata.Arn != wantARN {
			t.Fatalf("DescribeKey(%s) = %v", ref, err)
		}
	}
	_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/none")})
	if code := apiCode(t, err); code != "NotFoundException" {
		t.Fatalf("code %s", code)
	}
	mrk := createKey(t, c, true)
	if !strings.HasPrefix(*mrk.KeyId, "mrk-") || !*mrk.MultiRegion {
		t.Fatalf("multi-Region key id %s", *mrk.KeyId)
	}
}

func TestEncryptDecryptContextBinding(t *testing.T) {
	s := kmstest.NewServer()
	defer s.Close()
	c := client(s, "us-east-1", nil)
	ctx := context.Background()
	k1, k2 := createKey(t, c, false), createKey(t, c, false)
	ec := map[string]string{"purpose": "test", "a": "b"}
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: k1.KeyId, Plaintext: []byte("secret"), EncryptionContext: ec})
	if err != nil {
		t.Fatal(err)
	}
	if *enc.KeyId != *k1.Arn {
		t.Fatalf("KeyId %s", *enc.KeyId)
	}
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	if err != nil || !bytes.Equal(dec.Plaintext, []byte("secret")) || *dec.KeyId != *k1.Arn {
		t.Fatalf("Decrypt: %v", err)
	}
	cases := []struct {
		in   kms.DecryptInput
		code string
	}{
		{kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"purpose": "test"}}, "InvalidCiphertextException"},
		{kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}, "InvalidCiphertextException"},
		{kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec, KeyId: k2.Arn}, "IncorrectKeyException"},
		{kms.DecryptInput{CiphertextBlob: []byte{1, 2, 3}, EncryptionContext: ec}, "InvalidCiphertextException"},
		{kms.DecryptInput{CiphertextBlob: make([]byte, 7000)}, "ValidationException"},
	}
	for i, tc := range cases {
		_, err := c.Decrypt(ctx, &tc.in)
		if code := apiCode(t, err); code != tc.code {
			t.Errorf("case %d: code %s, want %s", i, code, tc.code)
		}
	}
	flipped := bytes.Clone(enc.CiphertextBlob)
	flipped[len(flipped)-1] ^= 1
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: flipped, EncryptionContext: ec})
	if code := apiCode(t, err); code != "InvalidCiphertextException" {
		t.Errorf("flipped bit: %s", code)
	}
}

func TestGenerateDataKeyAndReEncrypt(t *testing.T) {
	s := kmstest.NewServer()
	defer s.Close()
	c := client(s, "us-east-1", nil)
	ctx := context.Background()
	k1, k2 := createKey(t, c, false), createKey(t, c, false)
	for _, in := range []kms.GenerateDataKeyInput{
		{KeyId: k1.Arn, NumberOfBytes: aws.Int32(24)},
		{KeyId: k1.Arn, KeySpec: types.DataKeySpecAes128},
		{KeyId: k1.Arn, KeySpec: types.DataKeySpecAes256},
	} {
		out, err := c.GenerateDataKey(ctx, &in)
		if err != nil {
			t.Fatal(err)
		}
		want := map[types.DataKeySpec]int{types.DataKeySpecAes128: 16, types.DataKeySpecAes256: 32, "": 24}[in.KeySpec]
		if len(out.Plaintext) != want {
			t.Fatalf("data key %d bytes, want %d", len(out.Plaintext), want)
		}
	}
	_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: k1.Arn})
	if code := apiCode(t, err); code != "ValidationException" {
		t.Fatalf("no size: %s", code)
	}
	ec := map[string]string{"x": "1"}
	gen, err := c.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: k1.KeyId, NumberOfBytes: aws.Int32(32), EncryptionContext: ec})
	if err != nil {
		t.Fatal(err)
	}
	re, err := c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: gen.CiphertextBlob, SourceKeyId: k1.Arn,
		SourceEncryptionContext: ec, DestinationKeyId: k2.Arn, DestinationEncryptionContext: map[string]string{"y": "2"}})
	if err != nil || *re.KeyId != *k2.Arn || *re.SourceKeyId != *k1.Arn {
		t.Fatalf("ReEncrypt: %v", err)
	}
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: re.CiphertextBlob, EncryptionContext: map[string]string{"y": "2"}, KeyId: k2.Arn})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDisableRotateReplicate(t *testing.T) {
	s := kmstest.NewServer()
	defer s.Close()
	east, west := client(s, "us-east-1", nil), client(s, "us-west-2", nil)
	ctx := context.Background()
	k := createKey(t, east, true)
	enc, err := east.Encrypt(ctx, &kms.EncryptInput{KeyId: k.Arn, Plaintext: []byte("p")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := east.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: k.Arn, ReplicaRegion: aws.String("us-west-2")}); err != nil {
		t.Fatal(err)
	}
	dec, err := west.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil || !strings.Contains(*dec.KeyId, ":us-west-2:") {
		t.Fatalf("replica decrypt: %v", err)
	}
	_, err = east.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: k.Arn, RotationPeriodInDays: aws.Int32(30)})
	if code := apiCode(t, err); code != "ValidationException" {
		t.Fatalf("period 30: %s", code)
	}
	if _, err := east.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: k.Arn, RotationPeriodInDays: aws.Int32(90)}); err != nil {
		t.Fatal(err)
	}
	st, err := east.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: k.Arn})
	if err != nil || !st.KeyRotationEnabled || *st.RotationPeriodInDays != 90 || st.NextRotationDate == nil {
		t.Fatalf("status %+v %v", st, err)
	}
	if _, err := east.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: k.Arn}); err != nil {
		t.Fatal(err)
	}
	rots, err := east.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: k.Arn})
	if err != nil || len(rots.Rotations) != 1 || rots.Rotations[0].RotationType != types.RotationTypeOnDemand {
		t.Fatalf("rotations %+v %v", rots, err)
	}
	// Old ciphertext still decrypts after rotation; new ciphertext differs in backing version.
	if _, err := east.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}); err != nil {
		t.Fatal(err)
	}
	if _, err := east.DisableKey(ctx, &kms.DisableKeyInput{KeyId: k.Arn}); err != nil {
		t.Fatal(err)
	}
	_, err = east.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if code := apiCode(t, err); code != "DisabledException" {
		t.Fatalf("disabled: %s", code)
	}
	if _, err := west.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}); err != nil {
		t.Fatalf("replica state is independent: %v", err)
	}
	if _, err := east.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: k.Arn, PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	_, err = east.Encrypt(ctx, &kms.EncryptInput{KeyId: k.Arn, Plaintext: []byte("p")})
	if code := apiCode(t, err); code != "KMSInvalidStateException" {
		t.Fatalf("pending deletion: %s", code)
	}
}

func TestAuthentication(t *testing.T) {
	s := kmstest.NewServer()
	defer s.Close()
	ctx := context.Background()
	bad := client(s, "us-east-1", credentials.NewStaticCredentialsProvider(kmstest.AccessKeyID, "wrong-secret", ""))
	_, err := bad.CreateKey(ctx, &kms.CreateKeyInput{})
	if code := apiCode(t, err); code != "InvalidSignatureException" {
		t.Fatalf("wrong secret: %s", code)
	}
	unknown := client(s, "us-east-1", credentials.NewStaticCredentialsProvider("AKIAUNKNOWN", "x", ""))
	_, err = unknown.CreateKey(ctx, &kms.CreateKeyInput{})
	if code := apiCode(t, err); code != "UnrecognizedClientException" {
		t.Fatalf("unknown key: %s", code)
	}
	for hdr, want := range map[string]string{
		"":                                  "MissingAuthenticationTokenException",
		"Basic Zm9vOmJhcg==":                "IncompleteSignatureException",
		"AWS4-HMAC-SHA256 Credential=x/y/z": "IncompleteSignatureException",
	} {
		req, _ := http.NewRequest(http.MethodPost, s.URL(), strings.NewReader("{}"))
		req.Header.Set("X-Amz-Target", "TrentService.CreateKey")
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		if hdr != "" {
			req.Header.Set("Authorization", hdr)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-ErrorType") != want {
			t.Errorf("%q: %d %s, want 400 %s", hdr, resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), want)
		}
	}
}

func TestFaultsAndCounters(t *testing.T) {
	s := kmstest.NewServer()
	defer s.Close()
	c := client(s, "us-east-1", nil)
	ctx := context.Background()
	k := createKey(t, c, false)
	s.InjectFault("Encrypt", kmstest.Throttle(1))
	s.InjectFault("Encrypt", kmstest.Status500(1))
	s.InjectFault("Encrypt", kmstest.ResetConnection(1))
	in := &kms.EncryptInput{KeyId: k.Arn, Plaintext: []byte("p"), GrantTokens: []string{"gt-1"}}
	_, err := c.Encrypt(ctx, in)
	if code := apiCode(t, err); code != "ThrottlingException" {
		t.Fatalf("first: %s", code)
	}
	_, err = c.Encrypt(ctx, in)
	if code := apiCode(t, err); code != "KMSInternalException" {
		t.Fatalf("second: %s", code)
	}
	if _, err = c.Encrypt(ctx, in); err == nil {
		t.Fatal("reset connection: no error")
	}
	if _, err = c.Encrypt(ctx, in); err != nil {
		t.Fatalf("after faults: %v", err)
	}
	if n := s.Calls("Encrypt"); n != 4 {
		t.Fatalf("Calls(Encrypt) = %d, want 4", n)
	}
	reqs := s.Requests("Encrypt")
	if len(reqs) != 1 || reqs[0].GrantTokens[0] != "gt-1" || reqs[0].KeyID != *k.Arn {
		t.Fatalf("requests %+v", reqs)
	}
	s.DenyKey(*k.Arn)
	_, err = c.Encrypt(ctx, in)
	if code := apiCode(t, err); code != "AccessDeniedException" {
		t.Fatalf("denied: %s", code)
	}
	s.InjectFault("Encrypt", kmstest.Delay(10*time.Second))
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Encrypt(dctx, in); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("delay: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("deadline not honored")
	}
}

func TestBodyBounded(t *testing.T) {
	s := kmstest.NewServer(kmstest.WithoutSignatureCheck())
	defer s.Close()
	body := `{"Description":"` + strings.Repeat("a", 70<<10) + `"}`
	req, _ := http.NewRequest(http.MethodPost, s.URL(), strings.NewReader(body))
	req.Header.Set("X-Amz-Target", "TrentService.CreateKey")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+kmstest.AccessKeyID+"/20250101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature="+strings.Repeat("0", 64))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-ErrorType") != "ValidationException" {
		t.Fatalf("oversized body: %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
}

// TestRotationOperationsTakeNoAlias: as in KMS, EnableKeyRotation,
// GetKeyRotationStatus, RotateKeyOnDemand and ListKeyRotations take a key
// ID or key ARN only; every call is recorded with the key it named.
func TestRotationOperationsTakeNoAlias(t *testing.T) {
	s := kmstest.NewServer()
	defer s.Close()
	c := client(s, "us-east-1", nil)
	ctx := context.Background()
	k := createKey(t, c, false)
	if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/rot"), TargetKeyId: k.KeyId}); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"alias/rot", "arn:aws:kms:us-east-1:" + kmstest.DefaultAccountID + ":alias/rot"} {
		_, err := c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(ref)})
		if code := apiCode(t, err); code != "NotFoundException" {
			t.Errorf("RotateKeyOnDemand(%s): %s", ref, code)
		}
		_, err = c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(ref)})
		if code := apiCode(t, err); code != "NotFoundException" {
			t.Errorf("EnableKeyRotation(%s): %s", ref, code)
		}
		_, err = c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(ref)})
		if code := apiCode(t, err); code != "NotFoundException" {
			t.Errorf("GetKeyRotationStatus(%s): %s", ref, code)
		}
	}
	if _, err := c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: k.KeyId}); err != nil {
		t.Fatal(err)
	}
	reqs := s.Requests("RotateKeyOnDemand")
	if s.Calls("RotateKeyOnDemand") != 3 || len(reqs) != 3 || reqs[2].KeyID != *k.KeyId {
		t.Fatalf("recorded RotateKeyOnDemand calls: %d, %+v", s.Calls("RotateKeyOnDemand"), reqs)
	}
}
