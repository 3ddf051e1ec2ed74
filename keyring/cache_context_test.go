package keyring

import (
	"bytes"
	"testing"

	"github.com/keystack/keystack/envelope"
)

// TestSerialContextReuse checks that the remembered serialization is reused
// only for a context with exactly the same pairs: the same map mutated, a
// subset, a superset and swapped values must all serialize afresh.
func TestSerialContextReuse(t *testing.T) {
	c := memoTestCache(t)
	ec := map[string]string{"a": "1", "b": "2"}
	cases := []map[string]string{
		ec,
		{"b": "2", "a": "1"}, // equal contents, another map
		{"a": "1"},
		{"a": "1", "b": "2", "c": "3"},
		{"a": "2", "b": "1"},
		{"a": "1", "c": "2"},
		{"a": "1", "b": "2"},
		nil,
		{"a": "1", "b": "2\x00"},
		{"": ""},
	}
	for i, want := range cases {
		got, err := c.serialContext(want)
		ser, werr := envelope.SerializeContext(want)
		if err != nil || werr != nil || !bytes.Equal(got, ser) {
			t.Fatalf("case %d %v: got %x, %v; want %x, %v", i, want, got, err, ser, werr)
		}
	}
	c.serialContext(ec)
	ec["b"] = "changed" // the remembered pairs came from this map: mutate it
	if got, _ := c.serialContext(ec); !bytes.Equal(got, mustSerialize(t, ec)) {
		t.Fatal("mutated context served from the remembered serialization")
	}
	bad := map[string]string{"k": "\xff"}
	if _, err := c.serialContext(bad); err == nil {
		t.Fatal("invalid context serialized without error")
	}
}

func mustSerialize(t *testing.T, ec map[string]string) []byte {
	t.Helper()
	ser, err := envelope.SerializeContext(ec)
	if err != nil {
		t.Fatal(err)
	}
	return ser
}
