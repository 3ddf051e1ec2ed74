package envelope_test

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/keystack/keystack/envelope"
)

// TestParallelReadEncryptSigned: a signed message whose frames the sealing
// goroutines read hashes them in order: its signature verifies.
func TestParallelReadEncryptSigned(t *testing.T) {
	kr := aesKeyring(t, "pread", 1)
	pt := pattern(3<<20 + 5)
	f, err := os.Open(writeFile(t, pt))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	w, err := envelope.Encrypt(bg, &out, kr, envelope.EncryptOptions{Suite: envelope.SuiteCommittedSigned, FrameLength: 4096, PlaintextLength: int64(len(pt))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, atFile{f}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, _, err := envelope.DecryptBytes(bg, out.Bytes(), kr, envelope.DecryptOptions{})
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("round trip: %v", err)
	}
}
