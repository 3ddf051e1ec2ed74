package keystore

import (
	"bytes"
	"context"
	"slices"
	"sync"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
)

// lazyKeyring is a local key version's decrypt keyring that unseals the
// version's material on the first message holding an EDK of that version,
// so that decrypting under a store of many keys and versions unseals only
// the one the message names. To a message without such an EDK it answers
// as the built keyring would (no matching EDK), without building it. A
// failure to build is kept and returned for every later message.
type lazyKeyring struct {
	ns, name string // the EDKs' provider ID and key name
	match    func(envelope.EncryptedDataKey) bool
	build    func() (envelope.Keyring, error)

	once sync.Once
	kr   envelope.Keyring
	err  error
}

var _ envelope.Keyring = (*lazyKeyring)(nil)

func (l *lazyKeyring) get() (envelope.Keyring, error) {
	l.once.Do(func() { l.kr, l.err = l.build() })
	return l.kr, l.err
}

// OnEncrypt builds the keyring and wraps with it.
func (l *lazyKeyring) OnEncrypt(ctx context.Context, m *envelope.EncryptionMaterials) error {
	kr, err := l.get()
	if err != nil {
		return err
	}
	return kr.OnEncrypt(ctx, m)
}

// OnDecrypt builds the keyring only when an EDK is this version's.
func (l *lazyKeyring) OnDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	if !slices.ContainsFunc(edks, l.match) {
		return &envelope.NoDecryptKeyError{Attempts: []envelope.KeyAttempt{{ProviderID: l.ns, KeyName: l.name, Err: keyring.ErrNoMatchingEDK}}}
	}
	kr, err := l.get()
	if err != nil {
		return err
	}
	return kr.OnDecrypt(ctx, m, edks)
}

// localEDKMatch reports whether an EDK is a local key version's: raw AES
// EDKs carry the key name before the IV, raw RSA EDKs the name alone.
func localEDKMatch(ns, keyName string) func(envelope.EncryptedDataKey) bool {
	return func(e envelope.EncryptedDataKey) bool {
		return e.ProviderID == ns && (keyring.DescribeEDK(e).KeyName == keyName || bytes.Equal(e.ProviderInfo, []byte(keyName)))
	}
}

// kekReady derives the key-encryption key now if it is needed and not yet
// derived, so that a wrong or missing passphrase fails when the keyring is
// made, as it did before unsealing became lazy.
func (s *Store) kekReady(f *storeFile) error {
	if f.Insecure {
		return nil
	}
	s.mu.Lock()
	ready := s.kek != nil
	s.mu.Unlock()
	if ready {
		return nil
	}
	kek, err := s.unlockKEK(f)
	clear(kek)
	return err
}
