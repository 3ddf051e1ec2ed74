package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzVerify: Verify never panics and either accepts a consistent log or
// returns a TamperError; Query never panics on the same bytes.
// (Genuine logs made with the test key, e.g. from the corpus, do verify.)
func FuzzVerify(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "audit.log")
	// A fixed clock makes the log identical in every fuzz worker process.
	clock := func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	l := open(f, path, Options{Durability: Batch, CheckpointEvery: 2, Now: clock})
	for i := 0; i < 5; i++ {
		if err := l.Append(context.Background(), rec(i)); err != nil {
			f.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte("{}\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := Verify(bytes.NewReader(data), Key{MAC: testMAC})
		if err == nil && (rep.Entries != rep.Records+rep.Checkpoints || rep.LastSeq != uint64(rep.Entries)) {
			t.Fatalf("inconsistent report for an accepted log: %+v", rep)
		}
		if err != nil && !errors.Is(err, ErrTampered) {
			t.Fatalf("error %v is not a TamperError", err)
		}
		for _, err := range Query(bytes.NewReader(data), Filter{}) {
			_ = err
		}
	})
}

func TestOpenRefusesCorruptTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := open(t, path, Options{})
	if err := l.Append(context.Background(), rec(1)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	for name, tail := range map[string]string{"garbage": "garbage\n", "half a line, then a newline": `{"time":"x"` + "\n"} {
		t.Run(name, func(t *testing.T) {
			data, _ := os.ReadFile(path)
			p := filepath.Join(t.TempDir(), "audit.log")
			os.WriteFile(p, append(data, tail...), 0o600)
			if _, err := Open(p, Options{MACKey: testMAC}); !errors.Is(err, ErrTampered) {
				t.Fatalf("Open with a corrupt tail: %v", err)
			}
		})
	}
}

func TestAppendRefusesTruncatedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := open(t, path, Options{})
	for i := 0; i < 3; i++ {
		if err := l.Append(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), rec(4)); !errors.Is(err, ErrTruncated) {
		t.Fatalf("append after the file was truncated: %v", err)
	}
	if err := l.Append(context.Background(), rec(5)); err == nil {
		t.Fatal("log must stay failed")
	}
	l.Close()
}
