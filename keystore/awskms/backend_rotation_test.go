package awskms_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/kmstest"
	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/keystore/awskms"
)

// kmsStore is an insecure keystore with an awskms.Backend on the fixture's
// server registered for aws-kms keys.
func (f *fixture) kmsStore(t *testing.T) *keystore.Store {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ks")
	if _, err := keystore.Init(dir, keystore.InitOptions{Insecure: true}); err != nil {
		t.Fatal(err)
	}
	b := awskms.NewBackend(f.options())
	s, err := keystore.Open(dir, keystore.OpenOptions{Backends: map[string]keystore.Backend{keystore.BackendAWSKMS: b}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var storeEC = map[string]string{"app": "kms-rotation"}

func sealWith(t *testing.T, s *keystore.Store, name string) []byte {
	t.Helper()
	ctx := context.Background()
	kr, err := s.EncryptKeyring(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := envelope.EncryptBytes(ctx, []byte("kms rotation"), kr, envelope.EncryptOptions{Context: storeEC})
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func openWith(t *testing.T, s *keystore.Store, name string, msg []byte) *envelope.Header {
	t.Helper()
	ctx := context.Background()
	kr, err := s.DecryptKeyring(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	pt, h, err := envelope.DecryptBytes(ctx, msg, kr, envelope.DecryptOptions{})
	if err != nil || string(pt) != "kms rotation" {
		t.Fatalf("decrypt: %q, %v", pt, err)
	}
	return h
}

func lastEvent(ki *keystore.KeyInfo, v int) keystore.Event {
	h := ki.Versions[v-1].History
	return h[len(h)-1]
}

// TestStoreRotatesKMSKeyOnDemand: RotateKey on an aws-kms key rotates the
// KMS key's material in place; old messages still decrypt through the ARN.
func TestStoreRotatesKMSKeyOnDemand(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	arn := f.createKey(t, "us-east-1", false)
	s := f.kmsStore(t)
	if _, err := s.CreateKey(ctx, "pay", keystore.CreateKeyOptions{Backend: keystore.BackendAWSKMS, Ref: arn}); err != nil {
		t.Fatal(err)
	}
	old := sealWith(t, s, "pay")
	ki, err := s.RotateKey(ctx, "pay", "quarterly")
	if err != nil {
		t.Fatal(err)
	}
	if n := f.srv.Calls("RotateKeyOnDemand"); n != 1 {
		t.Fatalf("RotateKeyOnDemand called %d times", n)
	}
	if ki.Primary != 2 || ki.Versions[1].Ref != arn || ki.Versions[0].State != keystore.StateDecryptOnly ||
		lastEvent(ki, 2) != (keystore.Event{Time: ki.Versions[1].Created, Action: "rotate-on-demand", Reason: "quarterly"}) {
		t.Fatalf("after rotation: %+v", ki)
	}
	openWith(t, s, "pay", old)
	fresh := sealWith(t, s, "pay")
	openWith(t, s, "pay", fresh)

	// KMS automatic rotation, enabled through the settings.
	rs := &keystore.RotationSettings{Every: 180 * 24 * time.Hour, KMSAutomatic: true}
	if _, err := s.SetRotationSettings(ctx, "pay", rs); err != nil {
		t.Fatal(err)
	}
	if on, days, _ := f.rotationStatus(t, arn); !on || days != 180 {
		t.Fatalf("GetKeyRotationStatus after SetRotationSettings: enabled %v, every %d days", on, days)
	}
	openWith(t, s, "pay", old)

	// A KMS failure leaves the settings as they were.
	f.srv.InjectFault("EnableKeyRotation", kmstest.Status500(100))
	defer f.srv.ClearFaults()
	if _, err := s.SetRotationSettings(ctx, "pay", &keystore.RotationSettings{Every: 365 * 24 * time.Hour, KMSAutomatic: true}); err == nil {
		t.Fatal("SetRotationSettings succeeded while KMS failed")
	}
	got, err := s.DescribeKey(ctx, "pay")
	if err != nil || got.Rotation == nil || got.Rotation.Every != rs.Every {
		t.Fatalf("settings after a failed change: %+v, %v", got.Rotation, err)
	}
}

// TestStoreRotateKeyToNewKMSKey moves a key to a new ARN; old messages
// still decrypt, and their EDKs re-encrypt under the new key with KMS
// ReEncrypt without the data key leaving KMS.
func TestStoreRotateKeyToNewKMSKey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	arn1, arn2 := f.createKey(t, "us-east-1", false), f.createKey(t, "us-east-1", false)
	s := f.kmsStore(t)
	if _, err := s.CreateKey(ctx, "pay", keystore.CreateKeyOptions{Backend: keystore.BackendAWSKMS, Ref: arn1}); err != nil {
		t.Fatal(err)
	}
	old := sealWith(t, s, "pay")
	ki, err := s.RotateKeyTo(ctx, "pay", arn2, "new account key")
	if err != nil {
		t.Fatal(err)
	}
	if ki.Primary != 2 || ki.Versions[1].Ref != arn2 || ki.Versions[0].State != keystore.StateDecryptOnly ||
		lastEvent(ki, 2).Action != "rotate-to" || f.srv.Calls("RotateKeyOnDemand") != 0 {
		t.Fatalf("after RotateKeyTo: %+v", ki)
	}
	h := openWith(t, s, "pay", sealWith(t, s, "pay"))
	if got := string(h.EncryptedDataKeys[0].ProviderInfo); got != arn2 {
		t.Fatalf("new messages wrap under %s, want %s", got, arn2)
	}
	oh := openWith(t, s, "pay", old)
	edk := oh.EncryptedDataKeys[0]
	kr1, kr2 := f.keyring(t, f.options(arn1)), f.keyring(t, f.options(arn2))
	moved, err := kr1.ReEncryptEDK(ctx, edk, storeEC, arn2)
	if err != nil {
		t.Fatal(err)
	}
	want, err := unwrap(kr1, storeEC, []envelope.EncryptedDataKey{edk})
	if err != nil {
		t.Fatal(err)
	}
	got, err := unwrap(kr2, storeEC, []envelope.EncryptedDataKey{moved})
	if err != nil || !bytes.Equal(got, want) || string(moved.ProviderInfo) != arn2 {
		t.Fatalf("re-encrypted EDK: %v (provider info %s)", err, moved.ProviderInfo)
	}
	if _, err := s.RotateKeyTo(ctx, "pay", "", ""); !errors.Is(err, keystore.ErrInvalidOptions) {
		t.Fatalf("RotateKeyTo without a reference: %v", err)
	}
	if _, err := s.CreateKey(ctx, "local", keystore.CreateKeyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateKeyTo(ctx, "local", arn2, ""); !errors.Is(err, keystore.ErrNotSupported) {
		t.Fatalf("RotateKeyTo on a local key: %v", err)
	}
}

// TestBackendRotationResolvesAliases: KMS rotation operations take no
// alias, so the backend resolves an alias ARN to its key ARN first and
// rotates that key.
func TestBackendRotationResolvesAliases(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	arn := f.createKey(t, "us-east-1", false)
	if _, err := f.admin("us-east-1").CreateAlias(ctx, &kms.CreateAliasInput{
		AliasName: aws.String("alias/rot"), TargetKeyId: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	alias := "arn:aws:kms:us-east-1:" + kmstest.DefaultAccountID + ":alias/rot"
	b := awskms.NewBackend(f.options())
	if err := b.RotateOnDemand(ctx, alias); err != nil {
		t.Fatal(err)
	}
	if err := b.EnableRotation(ctx, alias, 90); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"RotateKeyOnDemand", "EnableKeyRotation"} {
		if reqs := f.srv.Requests(op); len(reqs) != 1 || reqs[0].KeyID != arn {
			t.Errorf("%s requests: %+v, want one naming %s", op, reqs, arn)
		}
	}
	if on, days, _ := f.rotationStatus(t, arn); !on || days != 90 {
		t.Fatalf("rotation status after enabling through the alias: enabled %v, every %d days", on, days)
	}
	if err := b.RotateOnDemand(ctx, "arn:aws:kms:us-east-1:"+kmstest.DefaultAccountID+":alias/none"); err == nil {
		t.Fatal("rotating through an unknown alias succeeded")
	}
}
