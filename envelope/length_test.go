package envelope_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/keystack/keystack/envelope"
)

// lengthSpy records the plaintext length a keyring is told.
type lengthSpy struct {
	envelope.Keyring
	seen int64
}

func (s *lengthSpy) OnEncrypt(ctx context.Context, m *envelope.EncryptionMaterials) error {
	s.seen = m.PlaintextLength
	return s.Keyring.OnEncrypt(ctx, m)
}

func TestDeclaredPlaintextLength(t *testing.T) {
	kr := aesKeyring(t, "len", 1)
	pt := bytes.Repeat([]byte("x"), 3000)
	encrypt := func(declared int64, data []byte) (*lengthSpy, []byte, error) {
		spy := &lengthSpy{Keyring: kr}
		var out bytes.Buffer
		w, err := envelope.Encrypt(bg, &out, spy, envelope.EncryptOptions{FrameLength: 1024, PlaintextLength: declared})
		if err != nil {
			t.Fatal(err)
		}
		_, werr := w.Write(data)
		cerr := w.Close()
		return spy, out.Bytes(), errors.Join(werr, cerr)
	}
	spy, msg, err := encrypt(3000, pt)
	if err != nil || spy.seen != 3000 {
		t.Fatalf("exact length: seen %d, %v", spy.seen, err)
	}
	if got, _, err := envelope.DecryptBytes(bg, msg, kr, envelope.DecryptOptions{}); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("decrypt: %v", err)
	}
	if spy, _, _ := encrypt(0, pt); spy.seen != -1 {
		t.Fatalf("undeclared stream: keyring told %d, want -1", spy.seen)
	}
	if _, _, err := encrypt(2999, pt); !errors.Is(err, envelope.ErrInvalidOptions) {
		t.Fatalf("more than declared: %v", err)
	}
	if _, _, err := encrypt(3001, pt); !errors.Is(err, envelope.ErrInvalidOptions) {
		t.Fatalf("less than declared: %v", err)
	}
}
