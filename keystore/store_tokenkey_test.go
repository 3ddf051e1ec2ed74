package keystore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/keystack/keystack/envelope"
)

// tokenFake is a pkcs11 backend that makes a new object per generated
// version, each under a reference of its own, and destroys them on demand.
type tokenFake struct {
	made, destroyed []string
}

func (b *tokenFake) Keyring(context.Context, string) (envelope.Keyring, error) {
	return nil, errors.New("tokenFake has no keyrings")
}

func (b *tokenFake) GenerateVersion(_ context.Context, ref string, version int) (string, error) {
	out := fmt.Sprintf("%s;object=v%d;id=%d", ref, version, len(b.made))
	b.made = append(b.made, out)
	return out, nil
}

func (b *tokenFake) DestroyVersion(_ context.Context, ref string) error {
	b.destroyed = append(b.destroyed, ref)
	return nil
}

// failingWrites fails the state writes while on, after the underlying
// write when landed is set (a write that landed, then reported an error).
type failingWrites struct {
	Storage
	on, landed bool
}

var errWriteFailed = errors.New("disk on fire")

func (w *failingWrites) Write(ctx context.Context, doc Document, data []byte, prev Revision) (Revision, error) {
	if !w.on || doc != StateDocument {
		return w.Storage.Write(ctx, doc, data, prev)
	}
	if w.landed {
		if _, err := w.Storage.Write(ctx, doc, data, prev); err != nil {
			return NoRevision, err
		}
	}
	return NoRevision, errWriteFailed
}

// A key generated on a token for a create or rotation whose store write
// fails is destroyed again, the object of exactly that reference, so a
// retry is not blocked by it; a write that landed despite its error keeps
// the object the store now names.
func TestGeneratedObjectDiscardedWhenWriteFails(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	tok := &tokenFake{}
	s.backends = map[string]Backend{BackendPKCS11: tok}
	fw := &failingWrites{Storage: s.st}
	s.st = fw
	create := func(name string) error {
		_, err := s.CreateKey(ctx, name, CreateKeyOptions{Backend: BackendPKCS11, Ref: "pkcs11:token=T", Generate: true})
		return err
	}

	fw.on = true
	if err := create("gen"); !errors.Is(err, errWriteFailed) {
		t.Fatalf("create with a failing write: %v", err)
	}
	if !slices.Equal(tok.destroyed, tok.made[:1]) {
		t.Fatalf("made %q, destroyed %q; want the one object destroyed", tok.made, tok.destroyed)
	}
	fw.on = false
	if err := create("gen"); err != nil {
		t.Fatalf("retry: %v", err)
	}

	fw.on = true
	if _, err := s.RotateKey(ctx, "gen", ""); !errors.Is(err, errWriteFailed) {
		t.Fatalf("rotation with a failing write: %v", err)
	}
	if len(tok.made) != 3 || !slices.Equal(tok.destroyed, []string{tok.made[0], tok.made[2]}) {
		t.Fatalf("made %q, destroyed %q; want the rotation's object destroyed", tok.made, tok.destroyed)
	}

	fw.landed = true
	if _, err := s.RotateKey(ctx, "gen", ""); !errors.Is(err, errWriteFailed) {
		t.Fatalf("rotation whose write landed: %v", err)
	}
	fw.on = false
	ki := describe(t, s, "gen")
	if v := ki.Versions[len(ki.Versions)-1]; len(tok.destroyed) != 2 || v.Ref != tok.made[3] {
		t.Fatalf("destroyed %q, newest version %+v; want the landed version's object kept", tok.destroyed, v)
	}
}
