package awskms_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/kmstest"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keyring/keyringtest"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/keystore/awskms"
)

func TestConformance(t *testing.T) {
	f := newFixture(t)
	newKR := func(t *testing.T) envelope.Keyring {
		return f.keyring(t, f.options(f.createKey(t, "us-east-1", false)))
	}
	keyringtest.RunWithOptions(t, newKR, keyringtest.Options{OtherKey: newKR})
}

func TestEDKShapeAndRoundTrip(t *testing.T) {
	f := newFixture(t)
	k1, k2 := f.createKey(t, "us-east-1", false), f.createKey(t, "us-west-2", false)
	kr := f.keyring(t, f.options(k1, k2))
	m := wrap(t, kr, testEC)
	if len(m.DataKey) != 32 || len(m.EncryptedDataKeys) != 2 {
		t.Fatalf("data key %d bytes, %d EDKs", len(m.DataKey), len(m.EncryptedDataKeys))
	}
	for i, want := range []string{k1, k2} {
		edk := m.EncryptedDataKeys[i]
		if edk.ProviderID != "aws-kms" || string(edk.ProviderInfo) != want {
			t.Fatalf("EDK %d: %s %s", i, edk.ProviderID, edk.ProviderInfo)
		}
	}
	if f.srv.Calls("GenerateDataKey") != 1 || f.srv.Calls("Encrypt") != 1 {
		t.Fatalf("calls: generate %d encrypt %d", f.srv.Calls("GenerateDataKey"), f.srv.Calls("Encrypt"))
	}
	// Each key alone unwraps its own EDK; the us-west-2 key is reached in its Region.
	for _, k := range []string{k1, k2} {
		dk, err := unwrap(f.keyring(t, f.options(k)), testEC, m.EncryptedDataKeys)
		if err != nil || !bytes.Equal(dk, m.DataKey) {
			t.Fatalf("unwrap with %s: %v", k, err)
		}
	}
	if reqs := f.srv.Requests("Decrypt"); reqs[len(reqs)-1].Region != "us-west-2" || reqs[len(reqs)-1].KeyID != k2 {
		t.Fatalf("last Decrypt %+v", reqs[len(reqs)-1])
	}
}

func TestESDKMessages(t *testing.T) {
	f := newFixture(t)
	k1, k2 := f.createKey(t, "us-east-1", false), f.createKey(t, "eu-central-1", false)
	local, err := keyring.NewRawAES("local", "backup", bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pt := bytes.Repeat([]byte("keystack "), 1000)
	cases := map[string]struct {
		enc  envelope.Keyring
		decs []envelope.Keyring
	}{
		"one key":        {f.keyring(t, f.options(k1)), []envelope.Keyring{f.keyring(t, f.options(k1))}},
		"two keys":       {f.keyring(t, f.options(k1, k2)), []envelope.Keyring{f.keyring(t, f.options(k2))}},
		"kms then local": {keyring.NewMulti(f.keyring(t, f.options(k1)), local), []envelope.Keyring{local, f.keyring(t, f.options(k1))}},
		"local then kms": {keyring.NewMulti(local, f.keyring(t, f.options(k2))), []envelope.Keyring{f.keyring(t, f.options(k2))}},
	}
	for name, tc := range cases {
		for _, suite := range []envelope.Suite{envelope.SuiteCommitted, envelope.SuiteCommittedSigned} {
			msg, err := envelope.EncryptBytes(ctx, pt, tc.enc, envelope.EncryptOptions{Suite: suite, Context: testEC, FrameLength: 512})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for i, dec := range tc.decs {
				got, _, err := envelope.DecryptBytes(ctx, msg, dec, envelope.DecryptOptions{Context: testEC})
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("%s %v decrypter %d: %v", name, suite, i, err)
				}
			}
		}
	}
}

func TestStrictModeNeverSendsUnlistedEDKs(t *testing.T) {
	f := newFixture(t)
	k1, k2 := f.createKey(t, "us-east-1", false), f.createKey(t, "us-east-1", false)
	m := wrap(t, f.keyring(t, f.options(k1)), testEC)
	_, err := unwrap(f.keyring(t, f.options(k2)), testEC, m.EncryptedDataKeys)
	if !errors.Is(err, envelope.ErrNoDecryptKey) || !errors.Is(err, awskms.ErrNoMatchingKey) {
		t.Fatalf("err = %v", err)
	}
	if n := f.srv.Calls("Decrypt"); n != 0 {
		t.Fatalf("strict keyring sent %d Decrypt calls for an unlisted key", n)
	}
	// A malformed aws-kms provider info is reported, not sent.
	bad := []envelope.EncryptedDataKey{{ProviderID: "aws-kms", ProviderInfo: []byte("not-an-arn"), Ciphertext: []byte{1}}}
	if _, err := unwrap(f.keyring(t, f.options(k1)), testEC, bad); !errors.Is(err, awskms.ErrInvalidKeyID) || f.srv.Calls("Decrypt") != 0 {
		t.Fatalf("malformed ARN: %v, %d calls", err, f.srv.Calls("Decrypt"))
	}
}

func TestDiscoveryFilter(t *testing.T) {
	f := newFixture(t)
	k := f.createKey(t, "us-east-1", false)
	m := wrap(t, f.keyring(t, f.options(k)), testEC)
	cases := []struct {
		filter *awskms.DiscoveryFilter
		ok     bool
	}{
		{nil, true},
		{&awskms.DiscoveryFilter{Partition: "aws", AccountIDs: []string{"999988887777", kmstest.DefaultAccountID}}, true},
		{&awskms.DiscoveryFilter{Partition: "aws", AccountIDs: []string{"999988887777"}}, false},
		{&awskms.DiscoveryFilter{Partition: "aws-cn", AccountIDs: []string{kmstest.DefaultAccountID}}, false},
	}
	for i, tc := range cases {
		before := f.srv.Calls("Decrypt")
		opts := f.options()
		opts.Discovery, opts.DiscoveryFilter = true, tc.filter
		dk, err := unwrap(f.keyring(t, opts), testEC, m.EncryptedDataKeys)
		sent := f.srv.Calls("Decrypt") - before
		if tc.ok && (err != nil || !bytes.Equal(dk, m.DataKey) || sent != 1) {
			t.Fatalf("case %d: %v, %d calls", i, err, sent)
		}
		if !tc.ok && (!errors.Is(err, awskms.ErrNoMatchingKey) || sent != 0) {
			t.Fatalf("case %d: filtered EDK: %v, %d calls", i, err, sent)
		}
	}
	opts := f.options()
	opts.Discovery = true
	if err := f.keyring(t, opts).OnEncrypt(context.Background(), &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted}); !errors.Is(err, awskms.ErrNoEncryptKey) {
		t.Fatalf("discovery encrypt: %v", err)
	}
}

func TestMultiRegionReplica(t *testing.T) {
	f := newFixture(t)
	primary := f.createKey(t, "us-east-1", true)
	ctx := context.Background()
	if _, err := f.admin("us-east-1").ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(primary), ReplicaRegion: aws.String("eu-west-1")}); err != nil {
		t.Fatal(err)
	}
	replica := strings.Replace(primary, ":us-east-1:", ":eu-west-1:", 1)
	m := wrap(t, f.keyring(t, f.options(primary)), testEC)
	// The primary's Region is out: only the replica can answer.
	f.srv.DenyKey(primary)
	dk, err := unwrap(f.keyring(t, f.options(replica)), testEC, m.EncryptedDataKeys)
	if err != nil || !bytes.Equal(dk, m.DataKey) {
		t.Fatalf("replica unwrap: %v", err)
	}
	last := f.srv.Requests("Decrypt")[0]
	if last.Region != "eu-west-1" || last.KeyID != replica {
		t.Fatalf("Decrypt went to %s with %s", last.Region, last.KeyID)
	}
	// A non-MRK key with the same shape never matches across Regions.
	other := f.createKey(t, "us-east-1", false)
	m2 := wrap(t, f.keyring(t, f.options(other)), testEC)
	foreign := strings.Replace(other, ":us-east-1:", ":eu-west-1:", 1)
	if _, err := unwrap(f.keyring(t, f.options(foreign)), testEC, m2.EncryptedDataKeys); !errors.Is(err, awskms.ErrNoMatchingKey) {
		t.Fatalf("non-MRK cross-Region: %v", err)
	}
}

// kmsErr extracts the single KMS failure from a decrypt error.
func kmsErr(t *testing.T, err error) *awskms.KMSError {
	t.Helper()
	var ke *awskms.KMSError
	if !errors.Is(err, envelope.ErrNoDecryptKey) || !errors.As(err, &ke) {
		t.Fatalf("want NoDecryptKeyError with a KMSError, got %v", err)
	}
	return ke
}

func TestDecryptFailuresAreClear(t *testing.T) {
	f := newFixture(t)
	k := f.createKey(t, "us-east-1", false)
	kr := f.keyring(t, f.options(k))
	m := wrap(t, kr, testEC)
	secret := string(m.DataKey)

	_, err := unwrap(kr, map[string]string{"purpose": "other"}, m.EncryptedDataKeys)
	if ke := kmsErr(t, err); ke.Code != "InvalidCiphertextException" || ke.Op != "Decrypt" || ke.KeyID != k {
		t.Fatalf("wrong context: %+v", ke)
	}
	if !strings.Contains(err.Error(), "InvalidCiphertextException") || strings.Contains(err.Error(), secret) {
		t.Fatalf("message: %v", err)
	}
	if _, err := f.admin("us-east-1").DisableKey(context.Background(), &kms.DisableKeyInput{KeyId: aws.String(k)}); err != nil {
		t.Fatal(err)
	}
	_, err = unwrap(kr, testEC, m.EncryptedDataKeys)
	if ke := kmsErr(t, err); ke.Code != "DisabledException" || !strings.Contains(err.Error(), k) {
		t.Fatalf("disabled: %v", err)
	}
	f.srv.DenyKey(k)
	_, err = unwrap(kr, testEC, m.EncryptedDataKeys)
	if ke := kmsErr(t, err); ke.Code != "AccessDeniedException" {
		t.Fatalf("denied: %v", err)
	}
	// Encrypt-side failures carry the same typed error.
	err = kr.OnEncrypt(context.Background(), &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted})
	var ke *awskms.KMSError
	if !errors.As(err, &ke) || ke.Op != "GenerateDataKey" || ke.Code != "AccessDeniedException" {
		t.Fatalf("encrypt denied: %v", err)
	}
}

func TestRetriesAndDeadlines(t *testing.T) {
	f := newFixture(t)
	k := f.createKey(t, "us-east-1", false)
	kr := f.keyring(t, f.options(k))

	f.srv.InjectFault("GenerateDataKey", kmstest.Throttle(2))
	f.srv.InjectFault("GenerateDataKey", kmstest.ResetConnection(1))
	m := wrap(t, kr, testEC)
	if n := f.srv.Calls("GenerateDataKey"); n != 4 {
		t.Fatalf("GenerateDataKey calls = %d, want 4 (2 throttled, 1 reset, 1 success)", n)
	}

	f.srv.InjectFault("Decrypt", kmstest.Status500(0))
	start := time.Now()
	_, err := unwrap(kr, testEC, m.EncryptedDataKeys)
	if ke := kmsErr(t, err); ke.Code != "KMSInternalException" {
		t.Fatalf("persistent 500: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("persistent 500 took %v", d)
	}
	if n := f.srv.Calls("Decrypt"); n != 5 {
		t.Fatalf("Decrypt attempts = %d, want MaxAttempts 5", n)
	}
	f.srv.ClearFaults()

	f.srv.InjectFault("Decrypt", kmstest.Delay(30*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = unwrapCtx(ctx, kr, testEC, m.EncryptedDataKeys)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("deadline honored only after %v", d)
	}
}

func TestReEncryptEDK(t *testing.T) {
	f := newFixture(t)
	src, dst := f.createKey(t, "us-east-1", false), f.createKey(t, "us-east-1", false)
	kr := f.keyring(t, f.options(src))
	m := wrap(t, kr, testEC)
	edk, err := kr.ReEncryptEDK(context.Background(), m.EncryptedDataKeys[0], testEC, dst)
	if err != nil {
		t.Fatal(err)
	}
	if string(edk.ProviderInfo) != dst || f.srv.Calls("Decrypt") != 0 || f.srv.Calls("ReEncrypt") != 1 {
		t.Fatalf("rewrapped EDK names %s; Decrypt calls %d", edk.ProviderInfo, f.srv.Calls("Decrypt"))
	}
	dk, err := unwrap(f.keyring(t, f.options(dst)), testEC, []envelope.EncryptedDataKey{edk})
	if err != nil || !bytes.Equal(dk, m.DataKey) {
		t.Fatalf("unwrap under new key: %v", err)
	}
	// The old key cannot unwrap the new EDK, even if the EDK is relabelled.
	relabelled := edk
	relabelled.ProviderInfo = []byte(src)
	_, err = unwrap(kr, testEC, []envelope.EncryptedDataKey{relabelled})
	if ke := kmsErr(t, err); ke.Code != "IncorrectKeyException" {
		t.Fatalf("old key on new EDK: %v", err)
	}
	// A keyring never rewraps an EDK of a key it may not use.
	other := f.keyring(t, f.options(dst))
	if _, err := other.ReEncryptEDK(context.Background(), m.EncryptedDataKeys[0], testEC, dst); !errors.Is(err, awskms.ErrNoMatchingKey) {
		t.Fatalf("unlisted source: %v", err)
	}
}

func TestAliasAndGrantTokens(t *testing.T) {
	f := newFixture(t)
	k := f.createKey(t, "us-east-1", false)
	if _, err := f.admin("us-east-1").CreateAlias(context.Background(), &kms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: aws.String(k)}); err != nil {
		t.Fatal(err)
	}
	alias := "arn:aws:kms:us-east-1:" + kmstest.DefaultAccountID + ":alias/app"
	opts := f.options(alias)
	opts.GrantTokens = []string{"grant-token-1", "grant-token-2"}
	m := wrap(t, f.keyring(t, opts), testEC)
	if got := string(m.EncryptedDataKeys[0].ProviderInfo); got != k {
		t.Fatalf("EDK names %s, want key ARN %s", got, k)
	}
	opts = f.options(k)
	opts.GrantTokens = []string{"grant-token-3"}
	if _, err := unwrap(f.keyring(t, opts), testEC, m.EncryptedDataKeys); err != nil {
		t.Fatal(err)
	}
	gen, dec := f.srv.Requests("GenerateDataKey"), f.srv.Requests("Decrypt")
	if len(gen) != 1 || strings.Join(gen[0].GrantTokens, ",") != "grant-token-1,grant-token-2" || gen[0].KeyID != alias {
		t.Fatalf("GenerateDataKey request %+v", gen)
	}
	if len(dec) != 1 || strings.Join(dec[0].GrantTokens, ",") != "grant-token-3" {
		t.Fatalf("Decrypt request %+v", dec)
	}
	if gen[0].EncryptionContext["tenant"] != "acme" {
		t.Fatalf("encryption context not sent: %v", gen[0].EncryptionContext)
	}
}

func TestOptionsValidation(t *testing.T) {
	for i, opts := range []awskms.Options{
		{},
		{KeyIDs: []string{"1234abcd-12ab-34cd-56ef-1234567890ab"}},
		{KeyIDs: []string{"arn:aws:s3:::bucket"}},
		{Discovery: true, DiscoveryFilter: &awskms.DiscoveryFilter{Partition: "aws"}},
		{KeyIDs: []string{"arn:aws:kms:us-east-1:111122223333:key/x"}, DiscoveryFilter: &awskms.DiscoveryFilter{Partition: "aws", AccountIDs: []string{"1"}}},
	} {
		opts.Config = testConfig()
		if _, err := awskms.New(context.Background(), opts); err == nil {
			t.Errorf("case %d: New accepted %+v", i, opts)
		}
	}
}

func TestDefaultConfigFromEnvironment(t *testing.T) {
	f := newFixture(t)
	k := f.createKey(t, "us-east-1", false)
	t.Setenv("AWS_ACCESS_KEY_ID", kmstest.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", kmstest.SecretAccessKey)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ENDPOINT_URL_KMS", f.srv.URL())
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	kr, err := awskms.New(context.Background(), awskms.Options{KeyIDs: []string{k}})
	if err != nil {
		t.Fatal(err)
	}
	m := wrap(t, kr, testEC)
	if dk, err := unwrap(kr, testEC, m.EncryptedDataKeys); err != nil || !bytes.Equal(dk, m.DataKey) {
		t.Fatalf("round trip via AWS_ENDPOINT_URL_KMS: %v", err)
	}
}

func TestBackendRotation(t *testing.T) {
	f := newFixture(t)
	k := f.createKey(t, "us-east-1", false)
	opts := f.options()
	b := awskms.NewBackend(opts)
	ctx := context.Background()
	kr, err := b.Keyring(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	m := wrap(t, kr, testEC)
	if err := b.EnableRotation(ctx, k, 180); err != nil {
		t.Fatal(err)
	}
	if on, days, next := f.rotationStatus(t, k); !on || days != 180 || next.IsZero() {
		t.Fatalf("rotation status: enabled %v, every %d days, next %v", on, days, next)
	}
	if err := b.RotateOnDemand(ctx, k); err != nil {
		t.Fatal(err)
	}
	kr2, err := b.Keyring(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if dk, err := unwrap(kr2, testEC, m.EncryptedDataKeys); err != nil || !bytes.Equal(dk, m.DataKey) {
		t.Fatalf("pre-rotation EDK after rotation: %v", err)
	}
	var ke *awskms.KMSError
	if err := b.EnableRotation(ctx, k, 10); !errors.As(err, &ke) || ke.Code != "ValidationException" {
		t.Fatalf("period 10: %v", err)
	}
	if _, err := b.Keyring(ctx, "alias/app"); !errors.Is(err, awskms.ErrInvalidKeyID) {
		t.Fatalf("bad ref: %v", err)
	}
}

func BenchmarkKMSWrap(b *testing.B) {
	f := newFixture(b)
	kr := f.keyring(b, f.options(f.createKey(b, "us-east-1", false)))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		m := &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: testEC, PlaintextLength: -1}
		if err := kr.OnEncrypt(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
}

// Backend is the keystore's backend for KMS key refs.
var _ keystore.Backend = (*awskms.Backend)(nil)
