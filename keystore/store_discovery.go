package keystore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keystack/keystack/internal/gatewire"

	"github.com/keystack/keystack/envelope"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/policy"
)

// maxExternalName bounds the key name an EDK's provider info may give (a
// KMS key ARN is at most 2048 bytes) before it becomes a policy resource.
const maxExternalName = 2048

// DiscoveryKeyring puts kr, a keyring that decrypts EDKs of keys the store
// does not list (an AWS KMS discovery keyring), behind the store's decision
// point, so that its decryptions are authorized and audited like those of
// store keys: before kr sees an EDK of provider, keystack:Decrypt
// (keystack:ReWrap in a rewrap) on "key/" + the EDK's provider info (the
// KMS key ARN, exactly as "-k ARN" is authorized) is decided and recorded
// for the message's encryption context. kr sees one allowed EDK at a time
// and never an EDK of another provider or a denied one; a failure to
// record refuses (fail closed). With OpenOptions.Cache, the store's
// data-key cache sits behind the gate. The keyring cannot encrypt.
func (s *Store) DiscoveryKeyring(ctx context.Context, kr envelope.Keyring, provider string) (envelope.Keyring, error) {
	if kr == nil || provider == "" {
		return nil, fmt.Errorf("%w: DiscoveryKeyring needs a keyring and its provider ID", ErrInvalidOptions)
	}
	kr, err := s.cached(ctx, kr, "discovery:"+provider, nil)
	if err != nil {
		return nil, err
	}
	g := &discoveryGate{s: s, inner: kr, provider: provider, action: policy.ActionDecrypt}
	if ctx.Value(rewrapKey{}) != nil {
		g.action = policy.ActionReWrap
	}
	return g, nil
}

// discoveryGate is the keyring DiscoveryKeyring returns.
type discoveryGate struct {
	s        *Store
	inner    envelope.Keyring
	provider string
	action   string
}

var errDiscoveryEncrypt = fmt.Errorf("%w: a discovery keyring only decrypts", ErrInvalidOptions)

// OnEncrypt refuses: discovery names no key to encrypt under.
func (g *discoveryGate) OnEncrypt(context.Context, *envelope.EncryptionMaterials) error {
	return errDiscoveryEncrypt
}

// OnDecrypt authorizes each EDK of the provider before the wrapped keyring
// sees it, stopping at the first that unwraps the data key.
func (g *discoveryGate) OnDecrypt(ctx context.Context, m *envelope.DecryptionMaterials, edks []envelope.EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	nerr := &envelope.NoDecryptKeyError{}
	for _, e := range edks {
		if e.ProviderID != g.provider {
			continue
		}
		name := string(e.ProviderInfo)
		if !plainName(name) {
			nerr.Attempts = append(nerr.Attempts, envelope.KeyAttempt{ProviderID: g.provider, KeyName: "(unprintable key name)", Err: keyring.ErrInvalidKey})
			continue
		}
		if err := g.s.authorize(ctx, g.action, name, 0, m.EncryptionContext); err != nil {
			if !gatewire.IsDenial(err) {
				return err
			}
			nerr.Attempts = append(nerr.Attempts, envelope.KeyAttempt{ProviderID: g.provider, KeyName: name, Err: err})
			continue
		}
		err := g.inner.OnDecrypt(ctx, m, []envelope.EncryptedDataKey{e})
		if m.DataKey != nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		nerr.Attempts = append(nerr.Attempts, attemptsOf(err, g.provider, name)...)
	}
	if len(nerr.Attempts) == 0 {
		nerr.Attempts = append(nerr.Attempts, envelope.KeyAttempt{ProviderID: g.provider, KeyName: "discovery", Err: errNoProviderEDK})
	}
	return nerr
}

var errNoProviderEDK = errors.New("no encrypted data key of this provider")

// attemptsOf returns the attempts err reports, or err as one attempt.
func attemptsOf(err error, provider, name string) []envelope.KeyAttempt {
	var nerr *envelope.NoDecryptKeyError
	if errors.As(err, &nerr) {
		return nerr.Attempts
	}
	if err == nil {
		err = errNoProviderEDK
	}
	return []envelope.KeyAttempt{{ProviderID: provider, KeyName: name, Err: err}}
}

// plainName reports whether an untrusted key name is short printable text,
// fit to be a policy resource and an audit field.
func plainName(s string) bool {
	if s == "" || len(s) > maxExternalName || !utf8.ValidString(s) {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) < 0
}
