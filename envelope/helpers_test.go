package envelope_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

var bg = context.Background()

// testAESKey returns a fixed, test-only wrapping key: byte i of key n is n*31+i.
func testAESKey(n byte) []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = n*31 + byte(i)
	}
	return k
}

func aesKeyring(t testing.TB, name string, n byte) envelope.Keyring {
	t.Helper()
	kr, err := keyring.NewRawAES("keystack-test", name, testAESKey(n))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
	rsaErr  error
)

func rsaKeyring(t testing.TB) envelope.Keyring {
	t.Helper()
	rsaOnce.Do(func() { rsaKey, rsaErr = rsa.GenerateKey(rand.Reader, 2048) })
	if rsaErr != nil {
		t.Fatal(rsaErr)
	}
	kr, err := keyring.NewRawRSA("keystack-test", "rsa-1", keyring.RSAOAEPSHA256, nil, rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// pattern returns n deterministic, non-repeating-looking bytes.
func pattern(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// chunkWriter writes p to w in chunks of growing odd sizes.
func writeOdd(t testing.TB, w io.Writer, p []byte) {
	t.Helper()
	step := 1
	for len(p) > 0 {
		n := min(step, len(p))
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
		step = step*3 + 2
		if step > 100000 {
			step = 7
		}
	}
}

func encryptStream(t testing.TB, kr envelope.Keyring, pt []byte, opts envelope.EncryptOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := envelope.Encrypt(bg, &buf, kr, opts)
	if err != nil {
		t.Fatal(err)
	}
	writeOdd(t, w, pt)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); !errors.Is(err, envelope.ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
	return buf.Bytes()
}
