package envelope

import (
	"bytes"
	"crypto/fips140"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha512"
	"os"
	"os/exec"
	"testing"
)

// expandCommitted must equal the textbook HKDF-SHA512 of the ESDK
// specification (framework/algorithm-suites.md) for any data key and ID.
func TestExpandCommittedIsHKDF(t *testing.T) {
	for range 50 {
		dk, id := make([]byte, 32), make([]byte, 32)
		rand.Read(dk)
		rand.Read(id)
		sid := [2]byte{0x04, 0x78}
		key, commit := expandCommitted(dk, id, sid)
		prk, err := hkdf.Extract(sha512.New, dk, id)
		if err != nil {
			t.Fatal(err)
		}
		wantKey, _ := hkdf.Expand(sha512.New, prk, string(sid[:])+"DERIVEKEY", 32)
		wantCommit, _ := hkdf.Expand(sha512.New, prk, "COMMITKEY", commitKeyLen)
		if !bytes.Equal(key, wantKey) || !bytes.Equal(commit, wantCommit) {
			t.Fatal("expandCommitted differs from crypto/hkdf")
		}
		stdKey, stdCommit, err := standardCommitted(dk, id, sid)
		if err != nil || !bytes.Equal(stdKey, wantKey) || !bytes.Equal(stdCommit, wantCommit) {
			t.Fatalf("standardCommitted differs from crypto/hkdf (%v)", err)
		}
	}
}

// In FIPS 140-3 mode the committing suites derive their keys through
// crypto/hkdf (standardCommitted), and the official vectors still
// decrypt: the test binary runs them again under GODEBUG=fips140=on.
func TestFIPSModeVectors(t *testing.T) {
	if os.Getenv("KEYSTACK_FIPS_CHILD") == "1" {
		if !fips140.Enabled() {
			t.Fatal("GODEBUG=fips140=on did not enable FIPS 140-3 mode")
		}
		return
	}
	if testing.Short() {
		t.Skip("runs the vectors again in a child process")
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^(TestFIPSModeVectors|TestOfficialVectorsRaw|TestRoundTrip.*)$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "GODEBUG=fips140=on", "KEYSTACK_FIPS_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("under fips140=on: %v\n%s", err, out)
	}
	for _, want := range []string{"--- PASS: TestFIPSModeVectors", "--- PASS: TestOfficialVectorsRaw"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Fatalf("under fips140=on, %q missing from:\n%s", want, out)
		}
	}
}
