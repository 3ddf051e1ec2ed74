package lazybackend

import (
	"context"
	"errors"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keystore"
)

// closingFake is a backend without keys that counts its Close calls.
type closingFake struct{ closed int }

func (*closingFake) Keyring(context.Context, string) (envelope.Keyring, error) {
	return nil, errors.New("no such key")
}

func (c *closingFake) Close() error { c.closed++; return nil }

// TestLazyBackend: a malformed ref fails without opening the backend; a
// message with no EDK of the backend's provider does not open it; the
// first real use opens it once; Close closes only an opened backend and
// nothing opens after it.
func TestLazyBackend(t *testing.T) {
	ctx := context.Background()
	opens := 0
	inner := &closingFake{}
	badRef := errors.New("bad ref")
	b := &Backend{Name: "fake", ProviderID: "fake-provider",
		Check: func(ref string) error {
			if ref == "bad" {
				return badRef
			}
			return nil
		},
		Open: func() keystore.Backend { opens++; return inner }}
	if _, err := b.Keyring(ctx, "bad"); !errors.Is(err, badRef) {
		t.Fatalf("Keyring(bad) = %v, want the Check error", err)
	}
	kr, err := b.Keyring(ctx, "k")
	if err != nil || opens != 0 {
		t.Fatalf("Keyring(k): %v, %d opens", err, opens)
	}
	m := &envelope.DecryptionMaterials{}
	err = kr.OnDecrypt(ctx, m, []envelope.EncryptedDataKey{{ProviderID: "other"}})
	if !errors.Is(err, envelope.ErrNoDecryptKey) || opens != 0 {
		t.Fatalf("OnDecrypt without its EDK: %v, %d opens; want ErrNoDecryptKey and no open", err, opens)
	}
	err = kr.OnDecrypt(ctx, m, []envelope.EncryptedDataKey{{ProviderID: "fake-provider"}})
	if !errors.Is(err, envelope.ErrNoDecryptKey) || opens != 1 {
		t.Fatalf("OnDecrypt with its EDK: %v, %d opens; want the inner failure and one open", err, opens)
	}
	if b.UnwrapBackend() != inner || opens != 1 {
		t.Fatalf("UnwrapBackend opened again (%d)", opens)
	}
	if err := b.Close(); err != nil || inner.closed != 1 {
		t.Fatalf("Close: %v, closed %d", err, inner.closed)
	}
	unused := &Backend{Name: "unused", Open: func() keystore.Backend { opens++; return inner }}
	if err := unused.Close(); err != nil || unused.UnwrapBackend() != nil || opens != 1 {
		t.Fatalf("an unused backend opened on Close or after it (%d opens)", opens)
	}
}
