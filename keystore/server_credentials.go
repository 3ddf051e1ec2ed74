package keystore

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/keystack/keystack/internal/serverstore"
	"github.com/keystack/keystack/policy"
)

// maxCredentialsPerPrincipal is how many active credentials a principal
// may hold: two, so that one can be rotated while the other serves.
const maxCredentialsPerPrincipal = 2

// credentialRecord is a key server access key as stored: its secret is
// sealed under the store's key-encryption key (in clear only in an
// insecure store), bound to its access key ID.
type credentialRecord struct {
	Principal string    `json:"principal"`
	Created   time.Time `json:"created"`
	Secret    []byte    `json:"secret"`
}

// Credential is a key server access key. Secret is set only by
// CreateCredential (shown once).
type Credential struct {
	AccessKeyID string    `json:"access_key_id"`
	Principal   string    `json:"principal"`
	Created     time.Time `json:"created"`
	Secret      string    `json:"secret_access_key,omitempty"`
}

func credentialResource(principal string) string { return policy.ResourceCredentialsPrefix + principal }

func credentialAAD(akid string) []byte { return []byte("keystack-credential\x00" + akid) }

// newAccessKey returns a fresh access key ID ("KS" and 18 of A-Z 2-7,
// as AWS access key IDs look) and a 40-character secret.
func newAccessKey() (akid, secret string, err error) {
	b := make([]byte, 12+30)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	akid = "KS" + base32.StdEncoding.EncodeToString(b[:12])[:18]
	return akid, base64.RawStdEncoding.EncodeToString(b[12:])[:40], nil
}

// CreateCredential issues an access key for principal
// (keystack:ManageCredentials on "credentials/PRINCIPAL"). The secret is
// returned once and stored sealed. A principal holds at most
// maxCredentialsPerPrincipal (ErrCredentialLimit).
func (s *Store) CreateCredential(ctx context.Context, principal string) (*Credential, error) {
	if !credentialPrincipal(principal) {
		return nil, fmt.Errorf("%w: a credential's principal is user:NAME or service:NAME (no * or ?), not %q", ErrInvalidOptions, principal)
	}
	if err := s.authorizeResource(ctx, policy.ActionManageCredentials, credentialResource(principal)); err != nil {
		return nil, err
	}
	akid, secret, err := newAccessKey()
	if err != nil {
		return nil, err
	}
	kek, err := s.kekIf(ctx, true)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	c := &Credential{AccessKeyID: akid, Principal: principal, Created: s.now().UTC(), Secret: secret}
	err = s.update(ctx, func(f *storeFile) error {
		st := f.server()
		if n := len(credentialsOf(st, principal)); n >= maxCredentialsPerPrincipal {
			return fmt.Errorf("%w: %s has %d (revoke one first)", ErrCredentialLimit, principal, n)
		}
		sealed, err := sealSecret(f, kek, akid, []byte(secret))
		if err != nil {
			return err
		}
		if st.Credentials == nil {
			st.Credentials = map[string]*credentialRecord{}
		}
		st.Credentials[akid] = &credentialRecord{Principal: principal, Created: c.Created, Secret: sealed}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// credentialPrincipal reports whether p can be a caller's identity: a
// user or service with a name. A group or a pattern is not one caller, and
// a policy matching it literally would grant what it did not mean to.
func credentialPrincipal(p string) bool {
	typ, name, ok := strings.Cut(p, ":")
	return ok && (typ == "user" || typ == "service") && name != "" &&
		!strings.ContainsAny(name, "*?") && !strings.ContainsFunc(name, unicode.IsControl)
}

func sealSecret(f *storeFile, kek []byte, akid string, secret []byte) ([]byte, error) {
	if f.Insecure {
		return slices.Clone(secret), nil
	}
	if err := checkVerifier(kek, f.Verifier); err != nil {
		return nil, errResealed
	}
	return seal(kek, secret, credentialAAD(akid))
}

func credentialsOf(st *serverState, principal string) []Credential {
	var out []Credential
	for _, id := range slices.Sorted(maps.Keys(st.Credentials)) {
		if c := st.Credentials[id]; principal == "" || c.Principal == principal {
			out = append(out, Credential{AccessKeyID: id, Principal: c.Principal, Created: c.Created})
		}
	}
	return out
}

// ListCredentials lists principal's access keys without secrets
// (keystack:ManageCredentials on "credentials/PRINCIPAL").
func (s *Store) ListCredentials(ctx context.Context, principal string) ([]Credential, error) {
	if err := s.authorizeResource(ctx, policy.ActionManageCredentials, credentialResource(principal)); err != nil {
		return nil, err
	}
	f, err := s.view(ctx)
	if err != nil || f.Server == nil { // f is shared read-only: no f.server()
		return nil, err
	}
	return credentialsOf(f.Server, principal), nil
}

// RevokeCredential deletes an access key (keystack:ManageCredentials on
// its principal's credentials). A running server refuses it from its
// next request on.
func (s *Store) RevokeCredential(ctx context.Context, akid string) error {
	f, err := s.view(ctx)
	if err != nil {
		return err
	}
	var c *credentialRecord
	if f.Server != nil { // f is shared read-only: no f.server()
		c = f.Server.Credentials[akid]
	}
	if c == nil {
		return fmt.Errorf("%w: %q", ErrCredentialNotFound, akid)
	}
	if err := s.authorizeResource(ctx, policy.ActionManageCredentials, credentialResource(c.Principal)); err != nil {
		return err
	}
	return s.update(ctx, func(f *storeFile) error {
		if _, ok := f.server().Credentials[akid]; !ok {
			return fmt.Errorf("%w: %q", ErrCredentialNotFound, akid)
		}
		delete(f.Server.Credentials, akid)
		return nil
	})
}

// LookupCredential keeps the unsealed credential with the state revision
// it was read from, so that a server's requests cost a map lookup, not a
// verifier check and an AES-GCM open under the store's lock; any write of
// the state (a revocation, a new credential, a reseal, another process's
// change) drops it, so a revoked key is refused from the next request on.
func (s serverOps) LookupCredential(ctx context.Context, akid string) (*serverstore.Credential, error) {
	f, err := s.view(ctx)
	if err != nil {
		return nil, err
	}
	s.snap.mu.Lock()
	c, ok := s.snap.creds[akid]
	shared := f == s.snap.parsed
	s.snap.mu.Unlock()
	if ok && shared {
		cc := *c
		return &cc, nil
	}
	c, err = s.openCredential(f, akid)
	if err != nil || !shared {
		return c, err
	}
	s.snap.mu.Lock()
	if f == s.snap.parsed {
		if s.snap.creds == nil {
			s.snap.creds = map[string]*serverstore.Credential{}
		}
		s.snap.creds[akid] = c
	}
	s.snap.mu.Unlock()
	cc := *c
	return &cc, nil
}

// openCredential unseals credential akid of f.
func (s *Store) openCredential(f *storeFile, akid string) (*serverstore.Credential, error) {
	var c *credentialRecord
	ok := false
	if f.Server != nil { // f is shared read-only: no f.server()
		c, ok = f.Server.Credentials[akid]
	}
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrCredentialNotFound, akid)
	}
	secret := c.Secret
	if !f.Insecure {
		kek, err := s.unlockKEK(f)
		if err != nil {
			return nil, err
		}
		defer clear(kek)
		if secret, err = unseal(kek, c.Secret, credentialAAD(akid)); err != nil {
			return nil, fmt.Errorf("%w: credential %q", ErrCorruptStore, akid)
		}
	}
	return &serverstore.Credential{AccessKeyID: akid, Principal: c.Principal, Secret: string(secret)}, nil
}
