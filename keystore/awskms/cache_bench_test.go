package awskms_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

// Issue #3's benchmark: KMS calls and latency per 1 KiB message without the
// data-key cache, and calls and throughput for 100,000 messages with it,
// against the kmstest server on loopback through the real SDK client.
const (
	// cacheBenchMessages is the message count of one cached op.
	cacheBenchMessages = 100_000
	// cacheMaxMessages is the cache's MaxMessages: each KMS data key
	// encrypts at most this many messages. The ESDK allows up to 2^32, but
	// a deployment that caches for security-conscious reuse sets it far
	// lower; 1000 makes one KMS call per 1000 messages (about 1 MiB of
	// 1 KiB messages) and the target exactly 100 calls.
	cacheMaxMessages = 1000
	// cacheMaxAge is long enough never to expire during a run, so the
	// message limit alone decides the KMS call count.
	cacheMaxAge = time.Hour
	// decryptBatch is how many messages the cached decrypt benchmark
	// encrypts (untimed) before decrypting them (timed), bounding memory.
	decryptBatch = 1000
)

// wantCalls is the target: ceil(n / max-messages) KMS calls.
func wantCalls(n, maxMessages int) int { return (n + maxMessages - 1) / maxMessages }

// kmsBench is a kmstest server with one KMS key and a keyring for it.
type kmsBench struct {
	f  *fixture
	kr envelope.Keyring
	pt []byte
}

func newKMSBench(tb testing.TB) *kmsBench {
	f := newFixture(tb)
	kr := f.keyring(tb, f.options(f.createKey(tb, "us-east-1", false)))
	return &kmsBench{f: f, kr: kr, pt: bytes.Repeat([]byte{0x5a}, 1024)}
}

// cached wraps the KMS keyring in a fresh cache with MaxMessages m.
func (k *kmsBench) cached(tb testing.TB, m int) *keyring.Caching {
	tb.Helper()
	c, err := keyring.NewCaching(k.kr, keyring.CacheOptions{MaxMessages: uint64(m), MaxAge: cacheMaxAge})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// encryptMany encrypts n copies of k.pt through kr on g goroutines
// (message i on goroutine i mod g), each message sealed on its writer's own
// goroutine. When out is non-nil it receives message i at out[i].
func (k *kmsBench) encryptMany(ctx context.Context, kr envelope.Keyring, n, g int, out [][]byte) error {
	opts := envelope.EncryptOptions{Context: testEC, Concurrency: 1}
	return onGoroutines(n, g, func(i int) error {
		msg, err := envelope.EncryptBytes(ctx, k.pt, kr, opts)
		if out != nil {
			out[i] = msg
		}
		return err
	})
}

// onEncryptMany is encryptMany without the message format: only the
// keyring's OnEncrypt for a 1 KiB message, so that the cache's own cost per
// message shows apart from envelope's. out must be nil.
func (k *kmsBench) onEncryptMany(ctx context.Context, kr envelope.Keyring, n, g int, out [][]byte) error {
	return onGoroutines(n, g, func(int) error {
		m := &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: testEC, PlaintextLength: int64(len(k.pt))}
		return kr.OnEncrypt(ctx, m)
	})
}

// decryptMany decrypts msgs through kr on g goroutines and checks each
// plaintext.
func (k *kmsBench) decryptMany(ctx context.Context, kr envelope.Keyring, msgs [][]byte, g int) error {
	opts := envelope.DecryptOptions{Context: testEC, Concurrency: 1}
	return onGoroutines(len(msgs), g, func(i int) error {
		pt, _, err := envelope.DecryptBytes(ctx, msgs[i], kr, opts)
		if err == nil && !bytes.Equal(pt, k.pt) {
			err = fmt.Errorf("message %d: plaintext mismatch", i)
		}
		return err
	})
}

// onGoroutines runs fn(0..n-1) on g goroutines and returns the first error
// of each goroutine, joined; a goroutine stops at its first error.
func onGoroutines(n, g int, fn func(i int) error) error {
	if g == 1 {
		for i := range n {
			if err := fn(i); err != nil {
				return err
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, g)
	for w := range g {
		wg.Go(func() {
			for i := w; i < n; i += g {
				if errs[w] = fn(i); errs[w] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// BenchmarkKMSEncrypt1KiB measures envelope.EncryptBytes of 1 KiB messages
// through the KMS keyring on the loopback server.
//
//   - uncached: one op is one message, so ns/op is the latency per message;
//     kms-calls/msg is the GenerateDataKey count the server saw, per message.
//   - cached-100k: one op is 100,000 messages on one goroutine through a
//     fresh cache with MaxMessages cacheMaxMessages. kms-calls is the
//     GenerateDataKey count per op as the server counted it, want-calls the
//     target ceil(100,000/MaxMessages); the benchmark fails if they differ.
//     msgs/s/core equals msgs/s since one goroutine is used.
//   - cached-100k-parallel: the same over GOMAXPROCS goroutines sharing one
//     cache; msgs/s/core is msgs/s divided by GOMAXPROCS.
//   - cached-100k-keyring-only: cached-100k calling only the keyring's
//     OnEncrypt per message, without the message format: the cache's and
//     KMS's share of a message, apart from envelope's.
func BenchmarkKMSEncrypt1KiB(b *testing.B) {
	k := newKMSBench(b)
	ctx := context.Background()
	b.Run("uncached", func(b *testing.B) {
		b.SetBytes(int64(len(k.pt)))
		b.ReportAllocs()
		before := k.f.srv.Calls("GenerateDataKey")
		for b.Loop() {
			if _, err := envelope.EncryptBytes(ctx, k.pt, k.kr, envelope.EncryptOptions{Context: testEC, Concurrency: 1}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(k.f.srv.Calls("GenerateDataKey")-before)/float64(b.N), "kms-calls/msg")
	})
	b.Run("cached-100k", func(b *testing.B) { k.benchCachedEncrypt(b, 1, k.encryptMany) })
	b.Run("cached-100k-parallel", func(b *testing.B) { k.benchCachedEncrypt(b, runtime.GOMAXPROCS(0), k.encryptMany) })
	b.Run("cached-100k-keyring-only", func(b *testing.B) { k.benchCachedEncrypt(b, 1, k.onEncryptMany) })
}

// encryptFunc is encryptMany or onEncryptMany.
type encryptFunc func(ctx context.Context, kr envelope.Keyring, n, g int, out [][]byte) error

func (k *kmsBench) benchCachedEncrypt(b *testing.B, g int, encrypt encryptFunc) {
	k.benchCalls(b, "GenerateDataKey", g, func(ctx context.Context) error {
		return encrypt(ctx, k.cached(b, cacheMaxMessages), cacheBenchMessages, g, nil)
	})
}

// benchCalls runs pass, which handles cacheBenchMessages messages through
// fresh caches, once per iteration; each pass must make exactly
// ceil(cacheBenchMessages/cacheMaxMessages) KMS calls of op, one per data
// key. It reports them with reportThroughput (g goroutines).
func (k *kmsBench) benchCalls(b *testing.B, op string, g int, pass func(ctx context.Context) error) {
	ctx := context.Background()
	want := wantCalls(cacheBenchMessages, cacheMaxMessages)
	b.SetBytes(int64(cacheBenchMessages * len(k.pt)))
	b.ReportAllocs()
	total := 0
	for b.Loop() {
		before := k.f.srv.Calls(op)
		if err := pass(ctx); err != nil {
			b.Fatal(err)
		}
		got := k.f.srv.Calls(op) - before
		if got != want {
			b.Fatalf("%d %s calls for %d messages, want ceil(%d/%d) = %d",
				got, op, cacheBenchMessages, cacheBenchMessages, cacheMaxMessages, want)
		}
		total += got
	}
	k.reportThroughput(b, total, want, g)
}

// reportThroughput reports the measured KMS calls per op (total over the
// run), the target, and message rates over the timed part of the run.
func (k *kmsBench) reportThroughput(b *testing.B, total, want, g int) {
	msgsPerSec := float64(cacheBenchMessages) * float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(float64(total)/float64(b.N), "kms-calls")
	b.ReportMetric(float64(want), "want-calls")
	b.ReportMetric(msgsPerSec, "msgs/s")
	b.ReportMetric(msgsPerSec/float64(g), "msgs/s/core")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/(float64(cacheBenchMessages)*float64(b.N)), "ns/msg")
}

// BenchmarkKMSDecrypt1KiB measures envelope.DecryptBytes of 1 KiB messages
// through the KMS keyring on the loopback server.
//
//   - uncached: one op is one message; kms-calls/msg is the Decrypt count
//     the server saw, per message.
//   - cached-100k: one op decrypts 100,000 messages on one goroutine through
//     a fresh cache. They were encrypted (untimed, in batches of
//     decryptBatch) through a cache with MaxMessages cacheMaxMessages, so
//     they carry ceil(100,000/MaxMessages) distinct EDKs, and the decrypt
//     cache must call KMS Decrypt exactly once per EDK: kms-calls is the
//     measured count, want-calls that number; the benchmark fails if they
//     differ.
//   - cached-100k-keyring-only: the same with only the keyrings' OnEncrypt
//     and OnDecrypt, without the message format.
func BenchmarkKMSDecrypt1KiB(b *testing.B) {
	k := newKMSBench(b)
	ctx := context.Background()
	b.Run("uncached", func(b *testing.B) {
		msgs := make([][]byte, 1)
		if err := k.encryptMany(ctx, k.kr, 1, 1, msgs); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(k.pt)))
		b.ReportAllocs()
		before := k.f.srv.Calls("Decrypt")
		for b.Loop() {
			if err := k.decryptMany(ctx, k.kr, msgs, 1); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(k.f.srv.Calls("Decrypt")-before)/float64(b.N), "kms-calls/msg")
	})
	b.Run("cached-100k", func(b *testing.B) { k.benchCachedDecrypt(b, k.messagePhases()) })
	b.Run("cached-100k-keyring-only", func(b *testing.B) { k.benchCachedDecrypt(b, k.keyringPhases()) })
}

// decryptPhases are the steps of a cached decrypt op for each batch of n
// (at most decryptBatch) messages: encrypt, untimed, then decrypt, timed.
type decryptPhases struct {
	encrypt func(ctx context.Context, enc envelope.Keyring, n int) error
	decrypt func(ctx context.Context, dec envelope.Keyring, n int) error
}

// messagePhases encrypt and decrypt whole messages with envelope.
func (k *kmsBench) messagePhases() decryptPhases {
	msgs := make([][]byte, decryptBatch)
	return decryptPhases{
		encrypt: func(ctx context.Context, enc envelope.Keyring, n int) error {
			return k.encryptMany(ctx, enc, n, 1, msgs[:n])
		},
		decrypt: func(ctx context.Context, dec envelope.Keyring, n int) error {
			return k.decryptMany(ctx, dec, msgs[:n], 1)
		},
	}
}

// keyringPhases call only the keyrings' OnEncrypt and OnDecrypt, and check
// that each unwrapped data key is the one the message was encrypted under.
func (k *kmsBench) keyringPhases() decryptPhases {
	edks := make([][]envelope.EncryptedDataKey, decryptBatch)
	keys := make([][]byte, decryptBatch)
	return decryptPhases{
		encrypt: func(ctx context.Context, enc envelope.Keyring, n int) error {
			for i := range n {
				m := &envelope.EncryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: testEC, PlaintextLength: int64(len(k.pt))}
				if err := enc.OnEncrypt(ctx, m); err != nil {
					return err
				}
				edks[i], keys[i] = m.EncryptedDataKeys, m.DataKey
			}
			return nil
		},
		decrypt: func(ctx context.Context, dec envelope.Keyring, n int) error {
			for i := range n {
				m := &envelope.DecryptionMaterials{Suite: envelope.SuiteCommitted, EncryptionContext: testEC}
				if err := dec.OnDecrypt(ctx, m, edks[i]); err != nil {
					return err
				}
				if !bytes.Equal(m.DataKey, keys[i]) {
					return fmt.Errorf("message %d: wrong data key", i)
				}
			}
			return nil
		},
	}
}

func (k *kmsBench) benchCachedDecrypt(b *testing.B, p decryptPhases) {
	k.benchCalls(b, "Decrypt", 1, func(ctx context.Context) error {
		enc, dec := k.cached(b, cacheMaxMessages), k.cached(b, cacheMaxMessages)
		for done := 0; done < cacheBenchMessages; done += decryptBatch {
			n := min(decryptBatch, cacheBenchMessages-done)
			b.StopTimer()
			if err := p.encrypt(ctx, enc, n); err != nil {
				return err
			}
			b.StartTimer()
			if err := p.decrypt(ctx, dec, n); err != nil {
				return err
			}
		}
		return nil
	})
}

// TestCachedKMSCallCount checks, at a size CI runs, the property the cached
// benchmarks assert: n messages through a cache with MaxMessages m make
// exactly ceil(n/m) GenerateDataKey calls, also when encrypts race, and
// decrypting them through a decrypt cache makes one Decrypt call per data key.
func TestCachedKMSCallCount(t *testing.T) {
	const n, m = 2500, 1000
	want := wantCalls(n, m) // 3
	ctx := context.Background()
	for _, g := range []int{1, 4} {
		t.Run(fmt.Sprintf("goroutines=%d", g), func(t *testing.T) {
			k := newKMSBench(t)
			enc, dec := k.cached(t, m), k.cached(t, m)
			msgs := make([][]byte, n)
			if err := k.encryptMany(ctx, enc, n, g, msgs); err != nil {
				t.Fatal(err)
			}
			if got := k.f.srv.Calls("GenerateDataKey"); got != want {
				t.Errorf("%d GenerateDataKey calls for %d messages, want ceil(%d/%d) = %d", got, n, n, m, want)
			}
			if s := enc.Stats(); s.EncryptMisses != uint64(want) || s.EncryptHits != n-uint64(want) {
				t.Errorf("encrypt stats %+v, want %d misses and %d hits", s, want, n-want)
			}
			if err := k.decryptMany(ctx, dec, msgs, g); err != nil {
				t.Fatal(err)
			}
			if got := k.f.srv.Calls("Decrypt"); got != want {
				t.Errorf("%d Decrypt calls for %d messages under %d data keys, want %d", got, n, want, want)
			}
		})
	}
}
