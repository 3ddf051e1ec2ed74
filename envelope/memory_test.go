package envelope_test

import (
	"io"
	"runtime"
	"testing"

	"github.com/keystack/keystack/envelope"
)

// TestBoundedMemory streams 40 MiB through Encrypt and Decrypt over a pipe
// and checks the total bytes allocated stay far below the data size: the
// pipelines hold a few frames, never the message.
func TestBoundedMemory(t *testing.T) {
	const size = 40 << 20
	kr := aesKeyring(t, "mem", 1)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		w, err := envelope.Encrypt(bg, pw, kr, envelope.EncryptOptions{Suite: envelope.SuiteCommittedSigned, Concurrency: 4})
		if err == nil {
			_, err = io.Copy(w, &zeroReader{n: size})
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
		pw.CloseWithError(err)
		errc <- err
	}()
	r, err := envelope.Decrypt(bg, pr, kr, envelope.DecryptOptions{Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil || n != size {
		t.Fatalf("decrypted %d bytes: %v", n, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KiB to stream %d MiB", alloc>>10, size>>20)
	if alloc > 24<<20 {
		t.Fatalf("allocated %d MiB to stream %d MiB", alloc>>20, size>>20)
	}
}
