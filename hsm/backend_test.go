package hsm_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keystack/keystack/hsm"
	"github.com/keystack/keystack/keyring"
)

// TestBackendRefusesBeforeLoading: references that cannot name a key are
// ErrInvalidURI and a closed Backend is ErrClosed, before any module is
// loaded (the module path does not exist: loading it would be ErrModule).
// Round trips on SoftHSM2 through NewBackend run in server, xks and the
// CLI's pkcs11 scripts; internal/pkcs11token tests the token itself.
func TestBackendRefusesBeforeLoading(t *testing.T) {
	ctx := context.Background()
	b := hsm.NewBackend(hsm.Options{ModulePath: "/nonexistent/libpkcs11.so"})
	for _, ref := range []string{"", "not-a-uri", "pkcs11:token=T", "pkcs11:token=T;object=k;pin-value=1234", "pkcs11:token=T;object=k;bogus=1"} {
		if _, err := b.Keyring(ctx, ref); !errors.Is(err, hsm.ErrInvalidURI) {
			t.Errorf("Keyring(%q): %v, want ErrInvalidURI", ref, err)
		}
		if _, err := b.RawKeyring(ctx, ref); !errors.Is(err, hsm.ErrInvalidURI) {
			t.Errorf("RawKeyring(%q): %v, want ErrInvalidURI", ref, err)
		}
		if err := b.DestroyVersion(ctx, ref); !errors.Is(err, hsm.ErrInvalidURI) {
			t.Errorf("DestroyVersion(%q): %v, want ErrInvalidURI", ref, err)
		}
	}
	if _, err := b.GenerateVersion(ctx, "pkcs11:token=T;object=k", 0); !errors.Is(err, hsm.ErrInvalidURI) {
		t.Errorf("GenerateVersion(version 0): %v, want ErrInvalidURI", err)
	}
	if _, err := b.Keyring(ctx, "pkcs11:token=T;object=k"); !errors.Is(err, hsm.ErrModule) {
		t.Errorf("Keyring with a missing module: %v, want ErrModule", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Keyring(ctx, "pkcs11:token=T;object=k"); !errors.Is(err, hsm.ErrClosed) {
		t.Errorf("Keyring after Close: %v, want ErrClosed", err)
	}
	if !errors.Is(hsm.ErrKeyNotFound, keyring.ErrKeyNotFound) {
		t.Error("hsm.ErrKeyNotFound does not match keyring.ErrKeyNotFound")
	}
}
