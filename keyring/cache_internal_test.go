package keyring

import (
	"bytes"
	"testing"

	"github.com/keystack/keystack/envelope"
)

// TestAppendEDKClonesIndependent checks that the one-buffer clone is a deep copy
// whose fields cannot reach each other through append, and keeps nil nil.
func TestAppendEDKClonesIndependent(t *testing.T) {
	src := []envelope.EncryptedDataKey{
		{ProviderID: "p1", ProviderInfo: []byte("info-1"), Ciphertext: []byte("ct-1")},
		{ProviderID: "p2", ProviderInfo: nil, Ciphertext: []byte("ct-2")},
	}
	pre := envelope.EncryptedDataKey{ProviderID: "already there"}
	out := appendEDKClones([]envelope.EncryptedDataKey{pre}, src)
	if len(out) != 3 || out[0].ProviderID != pre.ProviderID {
		t.Fatalf("got %d EDKs starting with %q, want the existing one and 2 clones", len(out), out[0].ProviderID)
	}
	out = out[1:]
	src[0].ProviderInfo[0], src[1].Ciphertext[0] = 'X', 'X'
	if string(out[0].ProviderInfo) != "info-1" || string(out[1].Ciphertext) != "ct-2" {
		t.Fatal("clone shares bytes with its source")
	}
	if out[1].ProviderInfo != nil {
		t.Fatal("nil ProviderInfo became non-nil")
	}
	_ = append(out[0].ProviderInfo, "overwrite"...)
	_ = append(out[0].Ciphertext, "overwrite"...)
	if !bytes.Equal(out[0].Ciphertext, []byte("ct-1")) || !bytes.Equal(out[1].Ciphertext, []byte("ct-2")) {
		t.Fatal("appending to one cloned field changed another")
	}
	if len(appendEDKClones(nil, nil)) != 0 {
		t.Fatal("clone of no EDKs is not empty")
	}
}
