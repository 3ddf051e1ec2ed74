package envelope

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha512"
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
	}
}
