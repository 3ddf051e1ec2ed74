package rewrap

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/keystore"
)

// benchKeys are two versions of one key with names of equal length, so a
// rewrap between them keeps the header size and runs in place.
func benchKeys(b *testing.B) (v1, v2 envelope.Keyring, either envelope.Keyring) {
	k1, k2 := keyFor(b, "bench/v1"), keyFor(b, "bench/v2")
	return k1, k2, keyring.NewMulti(k1, k2)
}

// writeTree writes n 1 KiB messages under kr into 100 directories of a
// new tree, and flushes the dirty pages now, or the first timed flush
// pays for them.
func writeTree(b *testing.B, n int, kr envelope.Keyring) string {
	dir := b.TempDir()
	for i := range n {
		sub := filepath.Join(dir, strconv.Itoa(i%100))
		os.MkdirAll(sub, 0o755)
		writeMessage(b, filepath.Join(sub, strconv.Itoa(i)+".ks"), kr, envelope.SuiteCommitted, 4096, 1024)
	}
	syscall.Sync()
	return dir
}

// BenchmarkRewrapTree rewraps a tree of 10,000 1 KiB messages per op,
// alternating between two key versions; files/s is the figure to read.
func BenchmarkRewrapTree(b *testing.B) {
	const files = 10000
	v1, v2, either := benchKeys(b)
	dir := writeTree(b, files, v1)
	targets := [2]envelope.Keyring{v2, v1}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		sum, err := RewrapPaths(context.Background(), []string{dir}, RewrapOptions{From: either, To: targets[i%2], Workers: 8})
		if err != nil || len(sum.Rewrapped) != files {
			b.Fatalf("rewrapped %d of %d: %v", len(sum.Rewrapped), files, err)
		}
	}
	b.ReportMetric(float64(files*b.N)/b.Elapsed().Seconds(), "files/s")
}

// bigMessageMiB is the size of the message the in-place benchmarks use;
// KEYSTACK_BENCH_REWRAP_MIB overrides the default 1 GiB.
func bigMessageMiB() int {
	if n, err := strconv.Atoi(os.Getenv("KEYSTACK_BENCH_REWRAP_MIB")); err == nil && n > 0 {
		return n
	}
	return 1024
}

func writeBigMessage(b *testing.B, path string, kr envelope.Keyring) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w, err := envelope.Encrypt(context.Background(), f, kr, envelope.EncryptOptions{})
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for range bigMessageMiB() {
		if _, err := w.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	// Flush the setup's dirty pages now, or the first timed fsync pays for them.
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRewrapInPlaceBig rewraps one large message in place (header only:
// the cost is independent of the body size). Compare with BenchmarkCopyBig.
func BenchmarkRewrapInPlaceBig(b *testing.B) {
	v1, v2, either := benchKeys(b)
	path := filepath.Join(b.TempDir(), "big.ks")
	writeBigMessage(b, path, v1)
	targets := [2]envelope.Keyring{v2, v1}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		res := RewrapFile(context.Background(), path, RewrapOptions{From: either, To: targets[i%2]})
		if res.Outcome != Rewrapped || !res.InPlace {
			b.Fatalf("%+v", res)
		}
	}
}

// BenchmarkCopyBig copies the same large message file to another file: the
// baseline for BenchmarkRewrapInPlaceBig, measured in the same run.
func BenchmarkCopyBig(b *testing.B) {
	v1, _, _ := benchKeys(b)
	dir := b.TempDir()
	src := filepath.Join(dir, "big.ks")
	writeBigMessage(b, src, v1)
	b.ResetTimer()
	for b.Loop() {
		in, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dir, "copy"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			b.Fatal(err)
		}
		out.Sync()
		out.Close()
		in.Close()
	}
}

// BenchmarkRewrapStoreTree is BenchmarkRewrapTree through Rewrap, as the
// CLI runs it: targets planned from each header and a real store, the key
// rotated before each op.
func BenchmarkRewrapStoreTree(b *testing.B) {
	const files = 10000
	ctx := context.Background()
	dir := filepath.Join(b.TempDir(), "ks")
	if _, err := keystore.Init(dir, keystore.InitOptions{Insecure: true}); err != nil {
		b.Fatal(err)
	}
	st, err := keystore.Open(dir, keystore.OpenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if _, err := st.CreateKey(ctx, "bench", keystore.CreateKeyOptions{}); err != nil {
		b.Fatal(err)
	}
	kr, err := st.EncryptKeyring(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	tree := writeTree(b, files, kr)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		if _, err := st.RotateKey(ctx, "bench", ""); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		sum, err := Rewrap(ctx, st, []string{tree}, StoreRewrapOptions{})
		if err != nil || len(sum.Rewrapped) != files {
			b.Fatalf("rewrapped %d of %d: %v", len(sum.Rewrapped), files, err)
		}
	}
	b.ReportMetric(float64(files*b.N)/b.Elapsed().Seconds(), "files/s")
}
