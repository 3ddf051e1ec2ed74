package keyring

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keystack/keystack/envelope"
)

func TestDecryptFirst(t *testing.T) {
	good := bytes.Repeat([]byte{7}, 32)
	edks := []envelope.EncryptedDataKey{{ProviderID: "other"}, {ProviderID: "me", Ciphertext: []byte("short")},
		{ProviderID: "me", Ciphertext: []byte("bad")}, {ProviderID: "me", Ciphertext: []byte("good")}, {ProviderID: "me", Ciphertext: []byte("later")}}
	var tried []string
	unwrap := func(edk envelope.EncryptedDataKey) ([]byte, bool, error) {
		if edk.ProviderID != "me" {
			return nil, false, nil
		}
		tried = append(tried, string(edk.Ciphertext))
		switch string(edk.Ciphertext) {
		case "short":
			return good[:16], true, nil
		case "bad":
			return nil, true, ErrInvalidEDK
		}
		return good, true, nil
	}
	attempt := func(err error) envelope.KeyAttempt { return envelope.KeyAttempt{KeyName: "me", Err: err} }
	ctx := context.Background()

	m := &envelope.DecryptionMaterials{Suite: envelope.SuiteCommitted}
	if err := DecryptFirst(ctx, m, edks, attempt, unwrap); err != nil || !bytes.Equal(m.DataKey, good) {
		t.Fatalf("DecryptFirst: %v, key %x", err, m.DataKey)
	}
	if want := "short bad good"; strings.Join(tried, " ") != want {
		t.Fatalf("tried %q, want %q: in order, stopping at the first data key", strings.Join(tried, " "), want)
	}

	// Already decrypted: nothing is tried.
	tried = nil
	if err := DecryptFirst(ctx, m, edks, attempt, unwrap); err != nil || tried != nil {
		t.Fatalf("with a data key: %v, tried %q", err, tried)
	}

	// Every failure is an attempt; no EDK for the key is one too.
	m = &envelope.DecryptionMaterials{Suite: envelope.SuiteCommitted}
	err := DecryptFirst(ctx, m, edks[:3], attempt, unwrap)
	var nerr *envelope.NoDecryptKeyError
	if !errors.As(err, &nerr) || len(nerr.Attempts) != 2 || !errors.Is(nerr.Attempts[0].Err, ErrUnwrapFailed) || !errors.Is(nerr.Attempts[1].Err, ErrInvalidEDK) {
		t.Fatalf("failures: %v", err)
	}
	err = DecryptFirst(ctx, m, edks[:1], attempt, unwrap)
	if !errors.As(err, &nerr) || len(nerr.Attempts) != 1 || !errors.Is(nerr.Attempts[0].Err, ErrNoMatchingEDK) {
		t.Fatalf("no EDK for the key: %v", err)
	}

	// A context that ends during an unwrap ends the loop with its error.
	cctx, cancel := context.WithCancel(ctx)
	err = DecryptFirst(cctx, m, edks, attempt, func(edk envelope.EncryptedDataKey) ([]byte, bool, error) {
		cancel()
		return nil, true, errors.New("interrupted")
	})
	if !errors.Is(err, context.Canceled) || m.DataKey != nil {
		t.Fatalf("cancelled: %v, key %x", err, m.DataKey)
	}
}
