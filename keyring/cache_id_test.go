package keyring

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"slices"
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

// memoTestCache is a caching keyring over a raw AES key for the memo tests.
func memoTestCache(t *testing.T) *Caching {
	t.Helper()
	inner, err := NewRawAES("ns", "k", make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCaching(inner, CacheOptions{MaxAge: time.Hour, PartitionID: "memo-test"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEncryptIDMemo checks that the memoized encrypt ID always equals the
// spec's, on first and repeated use, for two suites sharing a context, for
// contexts too long to memoize, and after the memo overflows and empties.
func TestEncryptIDMemo(t *testing.T) {
	c := memoTestCache(t)
	contexts := []map[string]string{
		nil,
		{"a": "1"},
		{"a": "1", "b": "2"},
		{"long": strings.Repeat("x", idMemoMaxKey)},
	}
	for i := range 2*idMemoMaxEntries + 3 {
		contexts = append(contexts, map[string]string{"n": strconv.Itoa(i)})
	}
	suites := []envelope.Suite{envelope.SuiteCommitted, envelope.Suite(0x0178)}
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

// specDecryptID is caching-cmm.md Appendix A's decrypt identifier written
// out step by step.
func specDecryptID(t *testing.T, partitionID string, suite envelope.Suite, ec map[string]string, edks []envelope.EncryptedDataKey) cacheID {
	t.Helper()
	ser, err := envelope.SerializeContext(ec)
	if err != nil {
		t.Fatal(err)
	}
	var hashes [][]byte
	for _, e := range edks {
		var entry []byte
		for _, f := range [][]byte{[]byte(e.ProviderID), e.ProviderInfo, e.Ciphertext} {
			entry = binary.BigEndian.AppendUint16(entry, uint16(len(f)))
			entry = append(entry, f...)
		}
		sum := sha512.Sum512(entry)
		hashes = append(hashes, sum[:])
	}
	slices.SortFunc(hashes, bytes.Compare)
	p, e := sha512.Sum512([]byte(partitionID)), sha512.Sum512(ser)
	h := sha512.New()
	h.Write(p[:])
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(suite)))
	for _, x := range hashes {
		h.Write(x)
	}
	h.Write(make([]byte, sha512.Size))
	h.Write(e[:])
	return cacheID(h.Sum(nil))
}

// TestDecryptIDMemo checks that the memoized decrypt ID always equals the
// spec's: on repeated use, for either EDK order, for the same EDKs under
// another context or suite, for inputs too long to memoize, and after the
// memo overflows.
func TestDecryptIDMemo(t *testing.T) {
	c := memoTestCache(t)
	a := envelope.EncryptedDataKey{ProviderID: "aws-kms", ProviderInfo: []byte("arn:a"), Ciphertext: []byte("ct-a")}
	bk := envelope.EncryptedDataKey{ProviderID: "raw", ProviderInfo: []byte("info-b"), Ciphertext: []byte("ct-b")}
	long := envelope.EncryptedDataKey{ProviderID: "raw", Ciphertext: bytes.Repeat([]byte{7}, idMemoMaxKey)}
	type input struct {
		suite envelope.Suite
		ec    map[string]string
		edks  []envelope.EncryptedDataKey
	}
	inputs := []input{
		{envelope.SuiteCommitted, nil, []envelope.EncryptedDataKey{a}},
		{envelope.SuiteCommitted, map[string]string{"x": "1"}, []envelope.EncryptedDataKey{a, bk}},
		{envelope.SuiteCommitted, map[string]string{"x": "1"}, []envelope.EncryptedDataKey{bk, a}},
		{envelope.Suite(0x0178), map[string]string{"x": "1"}, []envelope.EncryptedDataKey{a, bk}},
		{envelope.SuiteCommitted, map[string]string{"x": "2"}, []envelope.EncryptedDataKey{a, bk}},
		{envelope.SuiteCommitted, nil, []envelope.EncryptedDataKey{long}},
	}
	for i := range 2*idMemoMaxEntries + 3 {
		e := envelope.EncryptedDataKey{ProviderID: "raw", Ciphertext: []byte(strconv.Itoa(i))}
		inputs = append(inputs, input{envelope.SuiteCommitted, nil, []envelope.EncryptedDataKey{e}})
	}
	for round := range 2 {
		for i, in := range inputs {
			got, ok := c.decryptID(&envelope.DecryptionMaterials{Suite: in.suite, EncryptionContext: in.ec}, in.edks)
			if !ok {
				t.Fatalf("round %d input %d: bypassed", round, i)
			}
			if want := specDecryptID(t, "memo-test", in.suite, in.ec, in.edks); got != want {
				t.Fatalf("round %d input %d: ID differs from the spec's", round, i)
			}
		}
		if n := len(c.decMemo.m); n > idMemoMaxEntries {
			t.Fatalf("memo holds %d inputs, want at most %d", n, idMemoMaxEntries)
		}
	}
}
