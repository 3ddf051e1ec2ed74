package pkcs11token

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	u, err := ParseURI("pkcs11:token=prod;serial=abc%20d;slot-id=7;object=payments%2Fv2;id=%01%ff;type=secret" +
		"?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/pin")
	if err != nil {
		t.Fatal(err)
	}
	if u.Token != "prod" || u.Serial != "abc d" || u.SlotID == nil || *u.SlotID != 7 || u.Object != "payments/v2" ||
		!bytes.Equal(u.ID, []byte{1, 0xff}) || u.Type != TypeSecretKey ||
		u.Module != "/usr/lib/softhsm/libsofthsm2.so" || u.PINSource != "file:/etc/pin" {
		t.Fatalf("parsed %+v", u)
	}
	const canonical = "pkcs11:token=prod;serial=abc%20d;slot-id=7;object=payments%2Fv2;id=%01%FF;type=secret-key" +
		"?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/pin"
	if s := u.String(); s != canonical {
		t.Fatalf("String() = %s\nwant       %s", s, canonical)
	}
	again, err := ParseURI(u.String())
	if err != nil || again.String() != canonical {
		t.Fatalf("String does not round-trip: %v", err)
	}
	if u, err := ParseURI("PKCS11:x-vendor=1"); err != nil || u.String() != "pkcs11:" {
		t.Fatalf("vendor attribute: %v %v", u, err)
	}
}

func TestParseURIRejects(t *testing.T) {
	for _, s := range []string{
		"", "pkcs:token=a", "token=a", "pkcs11:token", "pkcs11:=a",
		"pkcs11:token=a;token=b", "pkcs11:tokn=a", "pkcs11:slot-id=-1", "pkcs11:slot-id=x",
		"pkcs11:type=cert", "pkcs11:object=%zz", "pkcs11:model=x", "pkcs11:?module-name=softhsm2",
		"pkcs11:?foo=bar", "pkcs11:" + strings.Repeat("a", maxURILen),
	} {
		if _, err := ParseURI(s); !errors.Is(err, ErrInvalidURI) {
			t.Errorf("ParseURI(%.40q) = %v, want ErrInvalidURI", s, err)
		}
	}
	const secret = "s3cr3t-PIN"
	_, err := ParseURI("pkcs11:token=a?pin-value=" + secret)
	if !errors.Is(err, ErrInvalidURI) || strings.Contains(err.Error(), secret) {
		t.Fatalf("pin-value: %v; want ErrInvalidURI without the PIN", err)
	}
}

// TestCheckKeyURI: a key reference must parse and name an object.
func TestCheckKeyURI(t *testing.T) {
	if err := CheckKeyURI("pkcs11:token=t;object=k"); err != nil {
		t.Errorf("CheckKeyURI with object: %v", err)
	}
	for _, bad := range []string{"pkcs11:token=t", "pkcs11:tokn=t;object=k", ""} {
		if err := CheckKeyURI(bad); !errors.Is(err, ErrInvalidURI) {
			t.Errorf("CheckKeyURI(%q) = %v, want ErrInvalidURI", bad, err)
		}
	}
}

func TestResolvePIN(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "pin")
	if err := os.WriteFile(file, []byte("from-file\r\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	prompted := 0
	prompt := func(_ context.Context, token string) (string, error) {
		prompted++
		if token != "T" {
			t.Errorf("prompt for token %q", token)
		}
		return "from-prompt", nil
	}
	for _, src := range []string{"file:" + file, "file://" + file, file} {
		if pin, err := resolvePIN(ctx, &URI{PINSource: src}, "T", prompt); err != nil || pin != "from-file" {
			t.Fatalf("pin-source %s: %q, %v", src, pin, err)
		}
	}
	if pin, err := resolvePIN(ctx, &URI{}, "T", prompt); err != nil || pin != "from-prompt" || prompted != 1 {
		t.Fatalf("prompt: %q, %v (prompted %d times)", pin, err, prompted)
	}
	t.Setenv(pinEnv, "from-env")
	if pin, err := resolvePIN(ctx, &URI{}, "T", prompt); err != nil || pin != "from-env" || prompted != 1 {
		t.Fatalf("env: %q, %v", pin, err)
	}
	t.Setenv(pinEnv, "")
	if _, err := resolvePIN(ctx, &URI{}, "T", nil); !errors.Is(err, ErrNoPIN) {
		t.Fatalf("no source: %v, want ErrNoPIN", err)
	}
	if _, err := resolvePIN(ctx, &URI{PINSource: "https://example.com/pin"}, "T", nil); !errors.Is(err, ErrInvalidURI) {
		t.Fatalf("non-file pin-source: %v, want ErrInvalidURI", err)
	}
	big := filepath.Join(dir, "big")
	// The contents are a marker no temp path can hold (t.TempDir names are
	// the test name and digits), so finding it in the error means a leak.
	const marker = "qPINq"
	if err := os.WriteFile(big, bytes.Repeat([]byte(marker), maxPINFile/len(marker)+1), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := resolvePIN(ctx, &URI{PINSource: "file:" + big}, "T", nil)
	if err == nil || !strings.Contains(err.Error(), "larger than") || strings.Contains(err.Error(), marker) {
		t.Fatalf("oversized pin file: %v; want a size error without its contents", err)
	}
}

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"pkcs11:token=prod;object=payments%2Fv2;type=secret?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/p",
		"pkcs11:id=%00%01;slot-id=3", "pkcs11:?pin-value=1234", "pkcs11:x-a=b;serial=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			return
		}
		again, err := ParseURI(u.String())
		if err != nil {
			t.Fatalf("String() of a parsed URI does not parse: %q: %v", u.String(), err)
		}
		if again.String() != u.String() {
			t.Fatalf("not stable: %q vs %q", again.String(), u.String())
		}
	})
}
