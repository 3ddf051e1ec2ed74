package keystore

import (
	"crypto/sha512"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keystack/keystack/envelope"
)

// specEncryptID is caching-cmm.md Appendix A's encrypt identifier written
// out step by step, independently of encryptID's stack buffer and memo.
func specEncryptID(t *testing.T, partitionID string, suite envelope.Suite, ec map[string]string) cacheID {
	t.Helper()
	ser, err := envelope.SerializeContext(ec)
	if err != nil {
		t.Fatal(err)
	}
	p, e := sha512.Sum512([]byte(partitionID)), sha512.Sum512(ser)
	h := sha512.New()
	h.Write(p[:])
	h.Write([]byte{0x01})
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(suite)))
	h.Write(e[:])
	return cacheID(h.Sum(nil))
}

// TestEncryptIDMemo checks that the memoized encrypt ID always equals the
// spec's, on first and repeated use, for two suites sharing a context, for
// contexts too long to memoize, and after the memo overflows and empties.
func TestEncryptIDMemo(t *testing.T) {
	inner, err := NewRawAESKeyring("ns", "k", make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCachingKeyring(inner, CacheOptions{MaxAge: time.Hour, PartitionID: "memo-test"})
	if err != nil {
		t.Fatal(err)
	}
	contexts := []map[string]string{
		nil,
		{"a": "1"},
		{"a": "1", "b": "2"},
		{"long": strings.Repeat("x", idMemoMaxContext)},
	}
	for i := range 2*idMemoMaxEntries + 3 {
		contexts = append(contexts, map[string]string{"n": strconv.Itoa(i)})
	}
	suites := []envelope.Suite{envelope.SuiteCommitted, envelope.SuiteLegacyAES256GCMHKDFSHA256}
	for round := range 2 {
		for i, ec := range contexts {
			for _, s := range suites {
				m := &envelope.EncryptionMaterials{Suite: s, EncryptionContext: ec, PlaintextLength: 1}
				got, ok := c.encryptID(m)
				if !ok {
					t.Fatalf("round %d context %d suite %v: bypassed", round, i, s)
				}
				if want := specEncryptID(t, "memo-test", s, ec); got != want {
					t.Fatalf("round %d context %d suite %v: ID differs from the spec's", round, i, s)
				}
			}
		}
		if n := len(c.memo.m); n > idMemoMaxEntries {
			t.Fatalf("memo holds %d contexts, want at most %d", n, idMemoMaxEntries)
		}
	}
}
