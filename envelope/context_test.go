package envelope_test

import (
	"bytes"
	"testing"

	"github.com/keystack/keystack/envelope"
)

// TestContextSortsByUTF8Bytes checks that U+FFFF (EF BF BF) sorts before
// U+1F600 (F0 9F 98 80), although UTF-16 order (FFFF vs D83D) is the reverse.
func TestContextSortsByUTF8Bytes(t *testing.T) {
	ec := map[string]string{"\U0001F600": "emoji", "\uFFFF": "bmp", "a": "\U0001F511 value"}
	got, err := envelope.SerializeContext(ec)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0, 3}
	for _, kv := range [][2]string{{"a", "\U0001F511 value"}, {"\uFFFF", "bmp"}, {"\U0001F600", "emoji"}} {
		want = append(want, 0, byte(len(kv[0])))
		want = append(want, kv[0]...)
		want = append(want, 0, byte(len(kv[1])))
		want = append(want, kv[1]...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("SerializeContext = %x, want %x", got, want)
	}

	kr := aesKeyring(t, "k1", 1)
	for _, suite := range []envelope.Suite{envelope.SuiteCommitted, envelope.SuiteCommittedSigned} {
		msg, err := envelope.EncryptBytes(bg, []byte("hi"), kr, envelope.EncryptOptions{Suite: suite, Context: ec})
		if err != nil {
			t.Fatal(err)
		}
		ia, ib, ic := bytes.Index(msg, []byte("\x00\x01a\x00")), bytes.Index(msg, []byte("\x00\x03\uFFFF\x00")), bytes.Index(msg, []byte("\x00\x04\U0001F600\x00"))
		if ia < 0 || ia > ib || ib > ic {
			t.Fatalf("header keys at %d, %d, %d: not in UTF-8 byte order", ia, ib, ic)
		}
		_, hdr, err := envelope.DecryptBytes(bg, msg, kr, envelope.DecryptOptions{Context: ec})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range ec {
			if hdr.EncryptionContext[k] != v {
				t.Fatalf("context key %q: got %q", k, hdr.EncryptionContext[k])
			}
		}
		_, hasPub := hdr.EncryptionContext[envelope.PublicKeyContextKey]
		if hasPub != suite.Signed() {
			t.Fatalf("suite %v: public key in context = %v", suite, hasPub)
		}
		if hasPub && len(hdr.EncryptionContext[envelope.PublicKeyContextKey]) != 68 {
			t.Fatalf("public key entry is %d chars, want 68", len(hdr.EncryptionContext[envelope.PublicKeyContextKey]))
		}
	}
}

func TestContextRules(t *testing.T) {
	kr := aesKeyring(t, "k1", 1)
	_, err := envelope.EncryptBytes(bg, nil, kr, envelope.EncryptOptions{Context: map[string]string{envelope.PublicKeyContextKey: "x"}})
	if !errorsIs(err, envelope.ErrInvalidContext) {
		t.Fatalf("reserved key: %v, want ErrInvalidContext", err)
	}
	_, err = envelope.EncryptBytes(bg, nil, kr, envelope.EncryptOptions{Context: map[string]string{"k": "\xff"}})
	if !errorsIs(err, envelope.ErrInvalidContext) {
		t.Fatalf("invalid UTF-8: %v, want ErrInvalidContext", err)
	}
	_, err = envelope.EncryptBytes(bg, nil, kr, envelope.EncryptOptions{RequiredContextKeys: []string{"missing"}})
	if !errorsIs(err, envelope.ErrInvalidContext) {
		t.Fatalf("required key not in context: %v, want ErrInvalidContext", err)
	}

	ec := map[string]string{"tenant": "acme", "stored": "yes"}
	pt := pattern(300)
	msg, err := envelope.EncryptBytes(bg, pt, kr, envelope.EncryptOptions{Context: ec, RequiredContextKeys: []string{"tenant"}, FrameLength: 100})
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := envelope.Inspect(bytes.NewReader(msg), envelope.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := hdr.EncryptionContext["tenant"]; ok || hdr.EncryptionContext["stored"] != "yes" {
		t.Fatalf("stored context = %v, want only the non-required pair", hdr.EncryptionContext)
	}
	if got, _, err := envelope.DecryptBytes(bg, msg, kr, envelope.DecryptOptions{Context: ec}); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("decrypt with full context: %v", err)
	}
	if _, _, err := envelope.DecryptBytes(bg, msg, kr, envelope.DecryptOptions{}); err == nil {
		t.Fatal("decrypt without the required pair succeeded")
	}
	bad := map[string]string{"tenant": "acme", "stored": "no"}
	if _, _, err := envelope.DecryptBytes(bg, msg, kr, envelope.DecryptOptions{Context: bad}); !errorsIs(err, envelope.ErrContextMismatch) {
		t.Fatalf("mismatched stored pair: %v, want ErrContextMismatch", err)
	}
	wrong := map[string]string{"tenant": "evil", "stored": "yes"}
	if _, _, err := envelope.DecryptBytes(bg, msg, kr, envelope.DecryptOptions{Context: wrong}); err == nil {
		t.Fatal("decrypt with a wrong required value succeeded")
	}
	// Reproducing only stored pairs takes the no-copy path: it must still
	// lack the required pair, and suffice for a message without one.
	if _, _, err := envelope.DecryptBytes(bg, msg, kr, envelope.DecryptOptions{Context: map[string]string{"stored": "yes"}}); err == nil {
		t.Fatal("decrypt reproducing only the stored pair succeeded without the required one")
	}
	plain, err := envelope.EncryptBytes(bg, pt, kr, envelope.EncryptOptions{Context: ec})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := envelope.DecryptBytes(bg, plain, kr, envelope.DecryptOptions{Context: ec}); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("decrypt reproducing exactly the stored context: %v", err)
	}
}
