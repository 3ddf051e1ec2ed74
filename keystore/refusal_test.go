package keystore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/keystack/keystack/envelope"
)

// TestRefusedVersionNamesState: a message under a version that may not
// decrypt fails with ErrKeyDisabled naming the version and its state, for
// every such state and for a version below the minimum, whether the key
// is named or the whole store is tried; other keys' messages are unaffected.
func TestRefusedVersionNamesState(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		state VersionState
		want  string
	}{
		{StateDisabled, "is disabled"},
		{StatePendingDestruction, "is pending-destruction"},
		{StateDestroyed, "is destroyed"},
		{StateEnabled, "is below the key's minimum decryption version 2"},
	}
	for _, tc := range cases {
		t.Run(string(tc.state), func(t *testing.T) {
			s, clk := newClockStore(t, OpenOptions{})
			mustCreate(t, s, "k")
			mustCreate(t, s, "other")
			msg := encryptUnder(t, s, "k")
			if _, err := s.RotateKey(ctx, "k", "setup"); err != nil {
				t.Fatal(err)
			}
			if tc.state == StateEnabled {
				if _, err := s.SetMinDecryptionVersion(ctx, "k", 2, "setup"); err != nil {
					t.Fatal(err)
				}
			} else {
				enterState(t, s, clk, 1, tc.state)
			}
			for _, name := range []string{"k", ""} {
				err := decryptWith(s, name, msg)
				var nerr *envelope.NoDecryptKeyError
				if !errors.As(err, &nerr) || !errors.Is(err, ErrKeyDisabled) {
					t.Fatalf("key %q: %v; want a NoDecryptKeyError with ErrKeyDisabled", name, err)
				}
				if want := fmt.Sprintf(`version 1 of "k" %s`, tc.want); !strings.Contains(err.Error(), want) {
					t.Errorf("key %q: %q does not say %q", name, err, want)
				}
			}
			if err := decryptWith(s, "", encryptUnder(t, s, "other")); err != nil {
				t.Errorf("a message under another key: %v", err)
			}
		})
	}
}
