package rewrap

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/internal/esdktest"
)

// TestRewrapOfficialShapes: messages the official SDKs write and keystack
// does not (a v2 non-framed body, frames under random IVs; built from the
// specification) rewrap with their body bytes and content type unchanged.
func TestRewrapOfficialShapes(t *testing.T) {
	old, next := keyFor(t, "app/v1"), keyFor(t, "app/v2")
	pt := bytes.Repeat([]byte("official shapes "), 700)
	for name, nonFramed := range map[string]bool{"non-framed": true, "random-iv": false} {
		t.Run(name, func(t *testing.T) {
			m, err := esdktest.NewMessage(context.Background(), old, esdktest.HeaderSpec{NonFramed: nonFramed, FrameLength: 1000})
			if err != nil {
				t.Fatal(err)
			}
			body := m.Framed(pt, 1000, esdktest.RandomIV)
			if nonFramed {
				body = m.NonFramed(esdktest.RandomIV(0), pt)
			}
			path := filepath.Join(t.TempDir(), "m.ks")
			if err := os.WriteFile(path, append(bytes.Clone(m.Header), body...), 0o600); err != nil {
				t.Fatal(err)
			}
			if res := RewrapFile(context.Background(), path, RewrapOptions{From: old, To: next}); res.Outcome != Rewrapped {
				t.Fatalf("outcome %+v", res)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after[headerLen(t, after):], body) {
				t.Fatal("body bytes changed")
			}
			h, _ := envelope.Inspect(bytes.NewReader(after), envelope.InspectOptions{})
			if (h.ContentType == 1) != nonFramed {
				t.Fatalf("content type %d after rewrap", h.ContentType)
			}
			if got, err := decryptFile(t, path, next); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("decrypt with the new key: %v", err)
			}
			if _, err := decryptFile(t, path, old); !errors.Is(err, envelope.ErrNoDecryptKey) {
				t.Fatalf("old key still decrypts: %v", err)
			}
		})
	}
}
