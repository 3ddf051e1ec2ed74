package envelope_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"io"
	"runtime"
	"sync"
	"testing"

	"github.com/keystack/keystack/envelope"
)

const benchSize = 64 << 20

// zeroReader yields n zero bytes without holding them in memory.
type zeroReader struct{ n int }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.n == 0 {
		return 0, io.EOF
	}
	m := min(len(p), z.n)
	clear(p[:m])
	z.n -= m
	return m, nil
}

func BenchmarkEncryptStream(b *testing.B) {
	kr := aesKeyring(b, "bench", 1)
	buf := make([]byte, 1<<20)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		w, err := envelope.Encrypt(bg, io.Discard, kr, envelope.EncryptOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for n := 0; n < benchSize; n += len(buf) {
			if _, err := w.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptStream(b *testing.B) {
	kr := aesKeyring(b, "bench", 1)
	var msg bytes.Buffer
	w, err := envelope.Encrypt(bg, &msg, kr, envelope.EncryptOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(w, &zeroReader{n: benchSize}); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, err := envelope.Decrypt(bg, bytes.NewReader(msg.Bytes()), kr, envelope.DecryptOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, r); err != nil || n != benchSize {
			b.Fatal(n, err)
		}
		r.Close()
	}
}

// BenchmarkRawGCM is the baseline: AES-256-GCM Seal over 64 KiB chunks,
// on one core and on all cores, with no message format at all.
func BenchmarkRawGCM(b *testing.B) {
	block, _ := aes.NewCipher(make([]byte, 32))
	aead, _ := cipher.NewGCM(block)
	const chunk = envelope.DefaultFrameLength
	run := func(b *testing.B, workers int) {
		b.SetBytes(benchSize)
		for b.Loop() {
			var wg sync.WaitGroup
			per := benchSize / chunk / workers
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := make([]byte, chunk, chunk+16)
					var iv [12]byte
					for i := 0; i < per; i++ {
						binary.BigEndian.PutUint32(iv[8:], uint32(i))
						aead.Seal(buf[:0], iv[:], buf, nil)
					}
				}()
			}
			wg.Wait()
		}
	}
	b.Run("single-core", func(b *testing.B) { run(b, 1) })
	b.Run("all-cores", func(b *testing.B) { run(b, runtime.GOMAXPROCS(0)) })
}
