package keystore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/keystack/keystack/policy"
)

// serverState is what the key server (package server) keeps in
// keystore.json beyond the keys themselves.
type serverState struct {
	Keys        map[string]*serverKey        `json:"keys,omitempty"`        // by key name
	Aliases     map[string]string            `json:"aliases,omitempty"`     // "alias/NAME" → key name
	Credentials map[string]*credentialRecord `json:"credentials,omitempty"` // by access key ID
}

// serverKey is a key's KMS-level state.
type serverKey struct {
	Tags         map[string]string `json:"tags,omitempty"`
	Disabled     bool              `json:"disabled,omitempty"`
	DeletionDate time.Time         `json:"deletion_date,omitzero"`
}

// ServerKeyState is a key's state as the key server reports it: KMS's
// Enabled, Disabled or PendingDeletion (with DeletionDate), and its tags.
type ServerKeyState struct {
	State        string
	DeletionDate time.Time
	Tags         map[string]string
}

// KMS key states.
const (
	KeyStateEnabled         = "Enabled"
	KeyStateDisabled        = "Disabled"
	KeyStatePendingDeletion = "PendingDeletion"
)

func (f *storeFile) server() *serverState {
	if f.Server == nil {
		f.Server = &serverState{}
	}
	return f.Server
}

func (st *serverState) key(name string) *serverKey {
	if st.Keys == nil {
		st.Keys = map[string]*serverKey{}
	}
	if st.Keys[name] == nil {
		st.Keys[name] = &serverKey{}
	}
	return st.Keys[name]
}

func (k *serverKey) state() ServerKeyState {
	s := ServerKeyState{State: KeyStateEnabled}
	if k == nil {
		return s
	}
	s.Tags = maps.Clone(k.Tags)
	switch {
	case !k.DeletionDate.IsZero():
		s.State, s.DeletionDate = KeyStatePendingDeletion, k.DeletionDate
	case k.Disabled:
		s.State = KeyStateDisabled
	}
	return s
}

// ServerKey returns key name's server state without a policy decision:
// the key server reads it to complete each request (the tags are the
// keystack:ResourceTag condition keys) before deciding it.
func (s *Store) ServerKey(name string) (ServerKeyState, error) {
	f, err := s.view(context.Background())
	if err != nil {
		return ServerKeyState{}, err
	}
	if _, err := lookup(f, name); err != nil {
		return ServerKeyState{}, err
	}
	var k *serverKey
	if f.Server != nil {
		k = f.Server.Keys[name]
	}
	return k.state(), nil
}

// changeServerKey authorizes action on key name, then runs fn on its
// server state under the write lock.
func (s *Store) changeServerKey(ctx context.Context, action, name string, fn func(k *serverKey, now time.Time) error) error {
	if err := s.authorize(ctx, action, name, 0, nil); err != nil {
		return err
	}
	return s.update(ctx, func(f *storeFile) error {
		if _, err := lookup(f, name); err != nil {
			return err
		}
		return fn(f.server().key(name), s.now().UTC())
	})
}

// SetKeyEnabled enables or disables key name for the key server
// (keystack:EnableKey / keystack:DisableKey). A key pending deletion
// cannot be enabled (ErrKeyState).
func (s *Store) SetKeyEnabled(ctx context.Context, name string, enabled bool) error {
	action := policy.ActionDisableKey
	if enabled {
		action = policy.ActionEnableKey
	}
	return s.changeServerKey(ctx, action, name, func(k *serverKey, _ time.Time) error {
		if !k.DeletionDate.IsZero() {
			return fmt.Errorf("%w: %q is pending deletion", ErrKeyState, name)
		}
		k.Disabled = !enabled
		return nil
	})
}

// ScheduleKeyDeletion marks key name pending deletion after days (7 to
// 30) days (keystack:ScheduleKeyDeletion) and returns the deletion date.
// The key serves nothing while pending; DeleteDueKeys (which the key
// server runs every minute) erases it once the date has passed.
func (s *Store) ScheduleKeyDeletion(ctx context.Context, name string, days int) (time.Time, error) {
	if days < 7 || days > 30 {
		return time.Time{}, fmt.Errorf("%w: the waiting period is 7 to 30 days, not %d", ErrInvalidOptions, days)
	}
	var at time.Time
	err := s.changeServerKey(ctx, policy.ActionScheduleKeyDeletion, name, func(k *serverKey, now time.Time) error {
		if !k.DeletionDate.IsZero() {
			return fmt.Errorf("%w: %q is already pending deletion", ErrKeyState, name)
		}
		at = now.Add(time.Duration(days) * day)
		k.DeletionDate = at
		return nil
	})
	return at, err
}

// CancelKeyDeletion cancels a scheduled deletion; the key is then
// disabled, as in AWS KMS (keystack:ScheduleKeyDeletion).
func (s *Store) CancelKeyDeletion(ctx context.Context, name string) error {
	return s.changeServerKey(ctx, policy.ActionScheduleKeyDeletion, name, func(k *serverKey, _ time.Time) error {
		if k.DeletionDate.IsZero() {
			return fmt.Errorf("%w: %q is not pending deletion", ErrKeyState, name)
		}
		k.DeletionDate, k.Disabled = time.Time{}, true
		return nil
	})
}

// maxTagsPerKey bounds a key's tags, as AWS KMS does.
const maxTagsPerKey = 50

// TagKey adds or replaces tags of key name (keystack:TagResource).
func (s *Store) TagKey(ctx context.Context, name string, tags map[string]string) error {
	for k, v := range tags {
		if k == "" || len(k) > 128 || len(v) > 256 {
			return fmt.Errorf("%w: tag keys are 1-128 characters, values at most 256", ErrInvalidOptions)
		}
	}
	return s.changeServerKey(ctx, policy.ActionTagResource, name, func(k *serverKey, _ time.Time) error {
		merged := maps.Clone(k.Tags)
		if merged == nil {
			merged = map[string]string{}
		}
		maps.Copy(merged, tags)
		if len(merged) > maxTagsPerKey {
			return fmt.Errorf("%w: a key has at most %d tags", ErrInvalidOptions, maxTagsPerKey)
		}
		k.Tags = merged
		return nil
	})
}

// UntagKey removes tags of key name by key (keystack:UntagResource).
func (s *Store) UntagKey(ctx context.Context, name string, keys []string) error {
	return s.changeServerKey(ctx, policy.ActionUntagResource, name, func(k *serverKey, _ time.Time) error {
		for _, t := range keys {
			delete(k.Tags, t)
		}
		return nil
	})
}

// KeyTags returns the tags of key name (keystack:DescribeKey).
func (s *Store) KeyTags(ctx context.Context, name string) (map[string]string, error) {
	if err := s.authorize(ctx, policy.ActionDescribeKey, name, 0, nil); err != nil {
		return nil, err
	}
	st, err := s.ServerKey(name)
	return st.Tags, err
}

// checkAlias validates an alias name ("alias/…").
func checkAlias(alias string) error {
	rest, ok := strings.CutPrefix(alias, "alias/")
	valid := ok && len(rest) >= 1 && len(rest) <= 250 && !strings.HasPrefix(alias, "alias/aws/")
	for i := 0; valid && i < len(rest); i++ {
		c := rest[i]
		valid = isAlnum(c) || c == '/' || c == '_' || c == '-'
	}
	if !valid {
		return fmt.Errorf("%w %q", ErrInvalidAlias, alias)
	}
	return nil
}

// ResolveAlias returns the key name alias points to, without a policy
// decision (the operation then made on the key is decided).
func (s *Store) ResolveAlias(alias string) (string, error) {
	f, err := s.load()
	if err != nil {
		return "", err
	}
	if f.Server != nil {
		if name, ok := f.Server.Aliases[alias]; ok {
			return name, nil
		}
	}
	return "", fmt.Errorf("%w: %q", ErrAliasNotFound, alias)
}

// CreateAlias points alias ("alias/NAME") at key name
// (keystack:CreateAlias on the key).
func (s *Store) CreateAlias(ctx context.Context, alias, name string) error {
	if err := checkAlias(alias); err != nil {
		return err
	}
	if err := s.authorize(ctx, policy.ActionCreateAlias, name, 0, nil); err != nil {
		return err
	}
	return s.update(ctx, func(f *storeFile) error {
		if _, err := lookup(f, name); err != nil {
			return err
		}
		st := f.server()
		if _, ok := st.Aliases[alias]; ok {
			return fmt.Errorf("%w: %q", ErrAliasExists, alias)
		}
		if st.Aliases == nil {
			st.Aliases = map[string]string{}
		}
		st.Aliases[alias] = name
		return nil
	})
}

// DeleteAlias removes alias (keystack:DeleteAlias on the key it names).
func (s *Store) DeleteAlias(ctx context.Context, alias string) error {
	name, err := s.ResolveAlias(alias)
	if err != nil {
		return err
	}
	if err := s.authorize(ctx, policy.ActionDeleteAlias, name, 0, nil); err != nil {
		return err
	}
	return s.update(ctx, func(f *storeFile) error {
		if f.Server == nil || f.Server.Aliases[alias] != name {
			return fmt.Errorf("%w: %q", ErrAliasNotFound, alias)
		}
		delete(f.Server.Aliases, alias)
		return nil
	})
}

// Alias is one alias and the key name it points to.
type Alias struct{ Alias, Key string }

// ListAliases returns every alias, or those of key name when name is not
// empty, sorted (keystack:ListKeys on every key, as AWS KMS's
// ListAliases needs kms:ListAliases on "*").
func (s *Store) ListAliases(ctx context.Context, name string) ([]Alias, error) {
	if err := s.authorize(ctx, policy.ActionListKeys, "*", 0, nil); err != nil {
		return nil, err
	}
	f, err := s.load()
	if err != nil || f.Server == nil {
		return nil, err
	}
	out := []Alias{}
	for _, a := range slices.Sorted(maps.Keys(f.Server.Aliases)) {
		if k := f.Server.Aliases[a]; name == "" || k == name {
			out = append(out, Alias{Alias: a, Key: k})
		}
	}
	return out, nil
}

// DeleteDueKeys erases every key whose server deletion date
// (ScheduleKeyDeletion) has passed: its record and all its versions'
// material, its aliases and its server state. Each deletion is decided as
// keystack:ScheduleKeyDeletion on the key for ctx's principal; a denied
// key stays and the denial is returned after the others are deleted.
func (s *Store) DeleteDueKeys(ctx context.Context) ([]string, error) {
	f, err := s.load()
	if err != nil || f.Server == nil {
		return nil, err
	}
	now := s.now().UTC()
	var deleted []string
	var denied error
	for _, name := range slices.Sorted(maps.Keys(f.Server.Keys)) {
		if k := f.Server.Keys[name]; k.DeletionDate.IsZero() || k.DeletionDate.After(now) {
			continue
		}
		if err := s.authorize(ctx, policy.ActionScheduleKeyDeletion, name, 0, nil); err != nil {
			denied = errors.Join(denied, err)
			continue
		}
		if err := s.update(ctx, func(f *storeFile) error { return deleteDue(f, name, now) }); err != nil {
			return deleted, err
		}
		deleted = append(deleted, name)
	}
	return deleted, denied
}

// deleteDue removes key name if it is still due (another process may
// have cancelled the deletion meanwhile).
func deleteDue(f *storeFile, name string, now time.Time) error {
	k := f.server().Keys[name]
	if k == nil || k.DeletionDate.IsZero() || k.DeletionDate.After(now) {
		return nil
	}
	delete(f.Keys, name)
	delete(f.Server.Keys, name)
	for a, target := range f.Server.Aliases {
		if target == name {
			delete(f.Server.Aliases, a)
		}
	}
	return nil
}
