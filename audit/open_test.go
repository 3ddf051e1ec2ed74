package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// writeLog writes lines to a fresh file and returns its path.
func writeLog(t *testing.T, lines [][]byte) string {
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestOpenRefusesTamperedLog: a writer never continues a tail it has not
// verified. Open verifies from its anchor on: every attack of tamperCases
// after an early anchor, and every removal from the end against the final
// anchor, makes Open fail without changing the file. (Edits before the
// anchor are Verify's to find: Open does not reread the whole log.)
func TestOpenRefusesTamperedLog(t *testing.T) {
	lines, final := tamperFixture(t, testMAC)
	e, _, _ := parseLine(nil, bytes.TrimSuffix(lines[1], []byte("\n")), [32]byte{})
	early := Anchor{Seq: 2, Head: e.Hash, Offset: int64(len(lines[0]) + len(lines[1]))}
	for _, c := range tamperCases(t, lines) {
		anchor := early
		if c.truncated {
			anchor = final
		}
		t.Run(c.name, func(t *testing.T) {
			path := writeLog(t, c.log)
			if c.log == nil {
				os.Remove(path)
			}
			before, _ := os.ReadFile(path)
			_, err := Open(path, Options{MACKey: testMAC, Anchor: &anchor})
			if !errors.Is(err, ErrTampered) || errors.Is(err, ErrTruncated) != c.truncated {
				t.Fatalf("Open: %v (want truncated %v)", err, c.truncated)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Fatal("Open changed a tampered log")
			}
		})
	}
	// An anchor whose entry is not where it says: the log was replaced.
	t.Run("other log", func(t *testing.T) {
		other, _ := tamperFixture(t, testMAC)
		other[0] = bytes.Replace(other[0], []byte("user:u0"), []byte("user:u9"), 1)
		if _, err := Open(writeLog(t, other), Options{MACKey: testMAC, Anchor: &final}); !errors.Is(err, ErrTampered) {
			t.Fatalf("Open: %v", err)
		}
	})
	// Without an anchor, Open verifies the whole file: everything but
	// removals from the end is found.
	for _, c := range tamperCases(t, lines) {
		if c.truncated {
			continue
		}
		t.Run("no anchor/"+c.name, func(t *testing.T) {
			if _, err := Open(writeLog(t, c.log), Options{MACKey: testMAC}); !errors.Is(err, ErrTampered) {
				t.Fatalf("Open: %v", err)
			}
		})
	}
}

// TestAppendRefusesForgedTail: records another "process" appends without
// the key are found by the next Append, which fails closed.
func TestAppendRefusesForgedTail(t *testing.T) {
	for _, mode := range []Durability{Sync, Batch} {
		t.Run(modeName(mode), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			l := open(t, path, Options{Durability: mode})
			if err := l.Append(context.Background(), rec(1)); err != nil {
				t.Fatal(err)
			}
			l.wmu.Lock()
			l.endLease() // as after leaseTime
			l.wmu.Unlock()
			forger := open(t, filepath.Join(t.TempDir(), "other.log"), Options{MACKey: bytes.Repeat([]byte{9}, 32)})
			e := Entry{Time: "t", Seq: 2, Type: TypeOperation, Principal: "user:owner", Outcome: "ok"}
			line, _, _ := e.seal(forger.ch, [32]byte{})
			forger.Close()
			appendFile(t, path, line)
			if err := l.Append(context.Background(), rec(2)); !errors.Is(err, ErrTampered) {
				t.Fatalf("append after a forged record: %v", err)
			}
			l.Close()
		})
	}
}

func appendFile(t *testing.T, path string, b []byte) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

// TestTornTailIsCut: an incomplete last line (a failed append) is not
// tampering; the next write cuts it, records a note, and the log verifies.
func TestTornTailIsCut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := open(t, path, Options{})
	if err := l.Append(context.Background(), rec(1)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	anchor := l.Anchor()
	appendFile(t, path, []byte(`{"time":"2026-01-01T00:00:00Z","seq":3,"ty`))
	if rep, err := verifyFile(t, path, Key{MAC: testMAC}, anchor); err != nil || rep.TornBytes == 0 {
		t.Fatalf("verify with a torn line: %+v %v", rep, err)
	}
	l = open(t, path, Options{Anchor: &anchor})
	if err := l.Append(context.Background(), rec(2)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyFile(t, path, Key{MAC: testMAC}, anchor)
	if err != nil || rep.TornBytes != 0 || rep.Records != 2 || !rep.Sealed {
		t.Fatalf("after the cut: %+v %v", rep, err)
	}
	data, _ := os.ReadFile(path)
	if !bytes.Contains(data, []byte(`"type":"note","reason":"removed 42 bytes of an incomplete line`)) {
		t.Fatalf("no note about the cut:\n%s", data)
	}
}

// TestCheckpointExport: Checkpoint's anchor carries a MAC under the key and
// pins the log; a forged MAC or another key is not authentic.
func TestCheckpointExport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := open(t, path, Options{Durability: Batch})
	defer l.Close()
	for i := 0; i < 3; i++ {
		if err := l.Append(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	a, err := l.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a.Seq != 4 || !a.Authentic(Key{MAC: testMAC}) || a.Authentic(Key{MAC: bytes.Repeat([]byte{8}, 32)}) {
		t.Fatalf("anchor %+v", a)
	}
	b := a
	b.Seq++
	if b.Authentic(Key{MAC: testMAC}) {
		t.Fatal("edited anchor still authentic")
	}
	if _, err := verifyFile(t, path, Key{MAC: testMAC}, a); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, a.Offset-1); err != nil {
		t.Fatal(err)
	}
	if _, err := verifyFile(t, path, Key{MAC: testMAC}, a); !errors.Is(err, ErrTruncated) {
		t.Fatalf("cut below the exported anchor: %v", err)
	}
}

// TestDiskFull fills a small tmpfs mid-append: the append fails (and its
// record is refused), the file still ends with a whole entry or a torn
// line, and once space is freed a new writer goes on and the log verifies.
func TestDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "64k")
	path := filepath.Join(dir, "audit.log")
	l := open(t, path, Options{Durability: Sync})
	if err := l.Append(context.Background(), rec(0)); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		err = l.Append(context.Background(), rec(i))
	}
	if !errors.Is(err, ErrWrite) {
		t.Fatalf("append on a full disk: %v", err)
	}
	l.Close()
	anchor := l.Anchor()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	l = open(t, path, Options{Anchor: &anchor})
	if err := l.Append(context.Background(), rec(1)); err != nil {
		t.Fatalf("append after space was freed: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := verifyFile(t, path, Key{MAC: testMAC}, anchor); err != nil || rep.TornBytes != 0 {
		t.Fatalf("verify after the disk was full: %+v %v", rep, err)
	}
}

// fill writes to path until the filesystem is full.
func fill(t *testing.T, path string) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := bytes.Repeat([]byte{'x'}, 512)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	for n := 511; n > 0; n-- { // and the last partial block
		if _, err := f.Write(buf[:n]); err == nil {
			n++
		}
	}
}

// mountTmpfs mounts a tmpfs of size under a temporary directory. Without
// the privilege it skips, except under CI=true, where it fails.
func mountTmpfs(t *testing.T, size string) string {
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("cannot mount a tmpfs for the disk-full test (needs root or CAP_SYS_ADMIN): %v: %s", err, strings.TrimSpace(string(out)))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// TestTornTailCutByAnother: a Log that saw torn bytes rereads them before
// writing, so a record another writer appended after cutting them (even of
// the same length) is continued, never cut.
func TestTornTailCutByAnother(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a := open(t, path, Options{})
	if err := a.Append(context.Background(), rec(1)); err != nil {
		t.Fatal(err)
	}
	b := open(t, path, Options{})
	if err := b.Append(context.Background(), rec(2)); err != nil { // b's record is written whole
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	lines := bytes.SplitAfter(data, []byte("\n"))
	lastLen := len(lines[len(lines)-2])
	// a saw b's record mid-write, as torn bytes after its own.
	a.wmu.Lock()
	if a.size != int64(len(data)-lastLen) {
		t.Fatal("fixture: a has moved")
	}
	a.torn = int64(lastLen)
	a.wmu.Unlock()
	if err := a.Append(context.Background(), rec(3)); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b.Close()
	rep, err := verifyFile(t, path, Key{MAC: testMAC})
	if err != nil || rep.Records != 3 {
		t.Fatalf("after a writer's stale view of a torn tail: %+v %v", rep, err)
	}
}
