package envelope_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"sync"
	"testing"

	"github.com/keystack/keystack/envelope"
)

// benchSizes are the stream sizes of the streaming benchmarks (issue #2:
// 256 MiB and 1 GiB); each is a sub-benchmark named by its size.
var benchSizes = []struct {
	name string
	n    int
}{{"256MiB", 256 << 20}, {"1GiB", 1 << 30}}

// forSizes runs fn as one sub-benchmark per stream size.
func forSizes(b *testing.B, fn func(b *testing.B, size int)) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) { fn(b, s.n) })
	}
}

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
	forSizes(b, func(b *testing.B, size int) {
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for b.Loop() {
			w, err := envelope.Encrypt(bg, io.Discard, kr, envelope.EncryptOptions{})
			if err != nil {
				b.Fatal(err)
			}
			for n := 0; n < size; n += len(buf) {
				if _, err := w.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDecryptStream(b *testing.B) {
	kr := aesKeyring(b, "bench", 1)
	forSizes(b, func(b *testing.B, size int) {
		var msg bytes.Buffer
		w, err := envelope.Encrypt(bg, &msg, kr, envelope.EncryptOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(w, &zeroReader{n: size}); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for b.Loop() {
			r, err := envelope.Decrypt(bg, bytes.NewReader(msg.Bytes()), kr, envelope.DecryptOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, r); err != nil || n != int64(size) {
				b.Fatal(n, err)
			}
			r.Close()
		}
	})
}

// BenchmarkRawGCM is the baseline: AES-256-GCM Seal over 64 KiB chunks,
// on one core and on all cores, with no message format at all.
func BenchmarkRawGCM(b *testing.B) {
	block, _ := aes.NewCipher(make([]byte, 32))
	aead, _ := cipher.NewGCM(block)
	const chunk = envelope.DefaultFrameLength
	run := func(b *testing.B, size, workers int) {
		b.SetBytes(int64(size))
		for b.Loop() {
			var wg sync.WaitGroup
			per := size / chunk / workers
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
	forSizes(b, func(b *testing.B, size int) {
		b.Run("single-core", func(b *testing.B) { run(b, size, 1) })
		b.Run("all-cores", func(b *testing.B) { run(b, size, runtime.GOMAXPROCS(0)) })
	})
}

// warmKeyring hands out one fixed data key and EDK, as a warm data-key
// cache does, so BenchmarkEncryptBytes1KiB measures envelope's own cost.
type warmKeyring struct{ edk envelope.EncryptedDataKey }

func (k warmKeyring) OnEncrypt(_ context.Context, m *envelope.EncryptionMaterials) error {
	m.DataKey = make([]byte, m.Suite.DataKeyLen())
	m.EncryptedDataKeys = append(m.EncryptedDataKeys, k.edk)
	return nil
}

func (warmKeyring) OnDecrypt(_ context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	if len(edks) == 0 || edks[0].ProviderID != "bench" {
		return errors.New("warmKeyring: not a bench message")
	}
	m.DataKey = make([]byte, m.Suite.DataKeyLen())
	return nil
}

var benchContext = map[string]string{"tenant": "acme", "purpose": "bench"}

// BenchmarkEncryptBytes1KiB is one 1 KiB message through EncryptBytes with
// the data key already at hand: everything keystack adds per message.
func BenchmarkEncryptBytes1KiB(b *testing.B) {
	kr := warmKeyring{envelope.EncryptedDataKey{ProviderID: "bench", ProviderInfo: []byte("bench-key"), Ciphertext: make([]byte, 60)}}
	pt := make([]byte, 1024)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := envelope.EncryptBytes(bg, pt, kr, envelope.EncryptOptions{Context: benchContext}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkDecryptBytes1KiB is the decrypting side of BenchmarkEncryptBytes1KiB.
func BenchmarkDecryptBytes1KiB(b *testing.B) {
	kr := warmKeyring{envelope.EncryptedDataKey{ProviderID: "bench", ProviderInfo: []byte("bench-key"), Ciphertext: make([]byte, 60)}}
	msg, err := envelope.EncryptBytes(bg, make([]byte, 1024), kr, envelope.EncryptOptions{Context: benchContext})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := envelope.DecryptBytes(bg, msg, kr, envelope.DecryptOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkMessageFloor1KiB is the baseline for it: the cryptography the
// format itself demands of every v2 message (framework/algorithm-suites.md):
// a random message ID, HKDF-SHA512 extract and two expands, an AES-256-GCM
// key schedule, and the header tag and one frame sealed. No keystack code.
func BenchmarkMessageFloor1KiB(b *testing.B) {
	dk, pt := make([]byte, 32), make([]byte, 1024)
	out := make([]byte, 0, 2048)
	var id [32]byte
	var iv [12]byte
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		rand.Read(id[:])
		prk, _ := hkdf.Extract(sha512.New, dk, id[:])
		key, _ := hkdf.Expand(sha512.New, prk, "\x04\x78DERIVEKEY", 32)
		if _, err := hkdf.Expand(sha512.New, prk, "COMMITKEY", 32); err != nil {
			b.Fatal(err)
		}
		block, _ := aes.NewCipher(key)
		aead, _ := cipher.NewGCM(block)
		aead.Seal(out[:0], iv[:], nil, id[:])
		aead.Seal(out[:0], iv[:], pt, id[:])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
