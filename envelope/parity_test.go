package envelope_test

import (
	"bytes"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

// TestEncryptMaxEncryptedDataKeys: a keyring producing more EDKs than the
// limit writes nothing; at the limit the message is written.
func TestEncryptMaxEncryptedDataKeys(t *testing.T) {
	kr := keyring.NewMulti(aesKeyring(t, "a", 1), aesKeyring(t, "b", 2), aesKeyring(t, "c", 3))
	_, err := envelope.EncryptBytes(bg, []byte("x"), kr, envelope.EncryptOptions{MaxEncryptedDataKeys: 2})
	if !errorsIs(err, envelope.ErrTooManyEncryptedDataKeys) {
		t.Fatalf("3 EDKs with limit 2: got %v, want ErrTooManyEncryptedDataKeys", err)
	}
	var out bytes.Buffer
	if _, err := envelope.Encrypt(bg, &out, kr, envelope.EncryptOptions{MaxEncryptedDataKeys: 2}); !errorsIs(err, envelope.ErrTooManyEncryptedDataKeys) || out.Len() != 0 {
		t.Fatalf("streaming: got %v with %d bytes written", err, out.Len())
	}
	msg, err := envelope.EncryptBytes(bg, []byte("x"), kr, envelope.EncryptOptions{MaxEncryptedDataKeys: 3})
	if err != nil {
		t.Fatal(err)
	}
	h, err := envelope.Inspect(bytes.NewReader(msg), envelope.InspectOptions{})
	if err != nil || len(h.EncryptedDataKeys) != 3 {
		t.Fatalf("inspect: %v, %d EDKs", err, len(h.EncryptedDataKeys))
	}
}

// TestRequireUnsigned: a signed message is refused before any keyring
// runs; an unsigned one decrypts.
func TestRequireUnsigned(t *testing.T) {
	kr := aesKeyring(t, "a", 1)
	signed, err := envelope.EncryptBytes(bg, []byte("s"), kr, envelope.EncryptOptions{Suite: envelope.SuiteCommittedSigned})
	if err != nil {
		t.Fatal(err)
	}
	spy := &countingKeyring{Keyring: kr}
	_, err = envelope.Decrypt(bg, bytes.NewReader(signed), spy, envelope.DecryptOptions{RequireUnsigned: true})
	if !errorsIs(err, envelope.ErrSigned) || spy.decrypts != 0 {
		t.Fatalf("signed: got %v after %d keyring calls, want ErrSigned before any", err, spy.decrypts)
	}
	plain, err := envelope.EncryptBytes(bg, []byte("u"), kr, envelope.EncryptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := envelope.Decrypt(bg, bytes.NewReader(plain), kr, envelope.DecryptOptions{RequireUnsigned: true})
	if err != nil {
		t.Fatalf("unsigned: %v", err)
	}
	r.Close()
}

// TestHeaderAuthAccessors: v2 headers expose their commitment, a zero IV
// and the tag, as copies.
func TestHeaderAuthAccessors(t *testing.T) {
	msg, err := envelope.EncryptBytes(bg, []byte("x"), aesKeyring(t, "a", 1), envelope.EncryptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := envelope.Inspect(bytes.NewReader(msg), envelope.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.CommitKey()) != 32 || !bytes.Equal(h.AuthIV(), make([]byte, 12)) || len(h.AuthTag()) != 16 {
		t.Fatalf("commit %x iv %x tag %x", h.CommitKey(), h.AuthIV(), h.AuthTag())
	}
	tag := h.AuthTag()
	tag[0] ^= 1
	if bytes.Equal(tag, h.AuthTag()) {
		t.Fatal("AuthTag returned the header's own slice")
	}
	if !bytes.Contains(msg[:h.HeaderLength], h.AuthTag()) {
		t.Fatal("the tag is not the one in the message")
	}
}
