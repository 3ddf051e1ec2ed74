package rotation

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keystore"
)

const week = 7 * day

// sealFile encrypts a small message under the store's primary of name.
func sealFile(t *testing.T, st *keystore.Store, name, path string) {
	t.Helper()
	ctx := context.Background()
	kr, err := st.EncryptKeyring(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := envelope.EncryptBytes(ctx, []byte("retire me"), kr, envelope.EncryptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, msg, 0o600); err != nil {
		t.Fatal(err)
	}
}

func stateOf(t *testing.T, st *keystore.Store, name string, v int) keystore.VersionState {
	t.Helper()
	ki, err := st.DescribeKey(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	vi, ok := findVersion(ki, v)
	if !ok {
		t.Fatalf("no version %d", v)
	}
	return vi.State
}

func TestRetireRefusedUntilRewrapped(t *testing.T) {
	ctx := context.Background()
	st := newAdapterStore(t, newFakeClock())
	createWith(t, st, "k", nil)
	dir := t.TempDir()
	sealFile(t, st, "k", filepath.Join(dir, "a.enc"))
	sealFile(t, st, "k", filepath.Join(dir, "b.enc"))
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a message"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RotateKey(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	inv, err := Retire(ctx, st, "k", 1, []string{dir}, false, week)
	var inUse *VersionInUseError
	if !errors.Is(err, ErrVersionInUse) || !errors.As(err, &inUse) || inUse.Messages != 2 || inUse.Version != 1 {
		t.Fatalf("Retire while in use: %v", err)
	}
	if inv == nil || inv.Uses("k", 1) != 2 || len(inv.Skipped) != 1 {
		t.Fatalf("inventory: %+v", inv)
	}
	if s := stateOf(t, st, "k", 1); s != keystore.StateDecryptOnly {
		t.Fatalf("refused retirement changed the version to %s", s)
	}

	from, err := st.DecryptKeyring(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	to, err := st.EncryptKeyring(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := RewrapPaths(ctx, []string{dir}, RewrapOptions{From: from, To: to})
	if err != nil || len(sum.Rewrapped) != 2 {
		t.Fatalf("rewrap: %+v, %v", sum, err)
	}
	inv, err = Retire(ctx, st, "k", 1, []string{dir}, false, week)
	if err != nil {
		t.Fatalf("Retire after rewrap: %v", err)
	}
	if inv.Uses("k", 1) != 0 || inv.Uses("k", 2) != 2 {
		t.Fatalf("inventory after rewrap: %+v", inv)
	}
	if s := stateOf(t, st, "k", 1); s != keystore.StatePendingDestruction {
		t.Fatalf("retired version is %s", s)
	}
}

func TestRetireForceAndRefusals(t *testing.T) {
	ctx := context.Background()
	st := newAdapterStore(t, newFakeClock())
	createWith(t, st, "k", nil)
	dir := t.TempDir()
	sealFile(t, st, "k", filepath.Join(dir, "a.enc"))
	if _, err := st.RotateKey(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := Retire(ctx, st, "k", 2, []string{dir}, true, week); !errors.Is(err, keystore.ErrIllegalTransition) {
		t.Fatalf("retiring the primary: %v", err)
	}
	if _, err := Retire(ctx, st, "k", 1, []string{dir}, true, day); !errors.Is(err, keystore.ErrInvalidOptions) {
		t.Fatalf("waiting below the minimum: %v", err)
	}
	if _, err := Retire(ctx, st, "k", 9, []string{dir}, true, week); !errors.Is(err, keystore.ErrKeyNotFound) {
		t.Fatalf("unknown version: %v", err)
	}
	inv, err := Retire(ctx, st, "k", 1, []string{dir}, true, week)
	if err != nil || inv.Uses("k", 1) != 1 {
		t.Fatalf("forced Retire: %+v, %v", inv, err)
	}
	ki, err := st.DescribeKey(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if vi, _ := findVersion(ki, 1); vi.State != keystore.StatePendingDestruction || vi.History[len(vi.History)-1].Reason == "" {
		t.Fatalf("forced retirement: %+v", vi)
	}
}

func TestUsesOfExternalVersions(t *testing.T) {
	inv := &Inventory{Keys: []KeyUsage{
		{Key: "arn:aws:kms:us-east-1:111122223333:key/a", Provider: "aws-kms", Messages: 3},
		{Key: "pay", Provider: "keystack-pkcs11", Version: 1, Messages: 4},
	}}
	arn := "arn:aws:kms:us-east-1:111122223333:key/a"
	kms := &keystore.KeyInfo{Name: "k", Backend: keystore.BackendAWSKMS, Versions: []keystore.VersionInfo{
		{Version: 1, State: keystore.StateDecryptOnly, Ref: arn}, {Version: 2, State: keystore.StateEnabled, Ref: "arn:aws:kms:us-east-1:111122223333:key/b"}}}
	if n := usesOf(inv, kms, kms.Versions[0]); n != 3 {
		t.Fatalf("KMS version with its own ARN: %d uses", n)
	}
	kms.Versions[1].Ref = arn // on-demand rotation: both versions share the ARN
	if n := usesOf(inv, kms, kms.Versions[0]); n != 0 {
		t.Fatalf("KMS version sharing its ARN with the primary: %d uses", n)
	}
	hsm := &keystore.KeyInfo{Name: "pay", Backend: keystore.BackendPKCS11, Versions: []keystore.VersionInfo{
		{Version: 1, State: keystore.StateDecryptOnly, Ref: "pkcs11:token=T;object=pay%2Fv1;type=secret-key?module-path=/x.so"},
		{Version: 2, State: keystore.StateEnabled, Ref: "pkcs11:token=T;object=pay%2Fv2;type=secret-key?module-path=/x.so"}}}
	if n := usesOf(inv, hsm, hsm.Versions[0]); n != 4 {
		t.Fatalf("PKCS#11 version: %d uses", n)
	}
	if n := usesOf(inv, hsm, hsm.Versions[1]); n != 0 {
		t.Fatalf("PKCS#11 version 2: %d uses", n)
	}
}
