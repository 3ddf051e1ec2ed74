package keystore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/keystack/keystack/internal/serverstore"
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

// serverOps is the key server's part of a Store (serverstore.Ops): its
// methods are the Store's, reached through serverstore.Of, so that the
// SDK's API holds only what an SDK user calls.
type serverOps struct{ *Store }

var _ serverstore.Ops = serverOps{}

func init() {
	serverstore.Register(func(store any) serverstore.Ops { return serverOps{store.(*Store)} })
}

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

func (k *serverKey) state() serverstore.KeyState {
	s := serverstore.KeyState{State: serverstore.Enabled}
	if k == nil {
		return s
	}
	s.Tags = maps.Clone(k.Tags)
	switch {
	case !k.DeletionDate.IsZero():
		s.State, s.DeletionDate = serverstore.PendingDeletion, k.DeletionDate
	case k.Disabled:
		s.State = serverstore.Disabled
	}
	return s
}

func (s serverOps) ServerKey(ctx context.Context, name string) (serverstore.KeyState, error) {
	f, _, err := s.viewKey(ctx, name)
	if err != nil {
		return serverstore.KeyState{}, err
	}
	var k *serverKey
	if f.Server != nil {
		k = f.Server.Keys[name]
	}
	return k.state(), nil
}

// changeServerKey authorizes action on key name, then runs fn on its
// server state under the write lock.
func (s serverOps) changeServerKey(ctx context.Context, action, name string, fn func(k *serverKey, now time.Time) error) error {
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

func (s serverOps) SetKeyEnabled(ctx context.Context, name string, enabled bool) error {
	action := policy.ActionDisableKey
	if enabled {
		action = policy.ActionEnableKey
	}
	return s.changeServerKey(ctx, action, name, func(k *serverKey, _ time.Time) error {
		if !k.DeletionDate.IsZero() {
			return fmt.Errorf("%w: %q is pending deletion", serverstore.ErrKeyState, name)
		}
		k.Disabled = !enabled
		return nil
	})
}

func (s serverOps) ScheduleKeyDeletion(ctx context.Context, name string, days int) (time.Time, error) {
	if days < 7 || days > 30 {
		return time.Time{}, fmt.Errorf("%w: the waiting period is 7 to 30 days, not %d", ErrInvalidOptions, days)
	}
	var at time.Time
	err := s.changeServerKey(ctx, policy.ActionScheduleKeyDeletion, name, func(k *serverKey, now time.Time) error {
		if !k.DeletionDate.IsZero() {
			return fmt.Errorf("%w: %q is already pending deletion", serverstore.ErrKeyState, name)
		}
		at = now.Add(time.Duration(days) * day)
		k.DeletionDate = at
		return nil
	})
	return at, err
}

func (s serverOps) CancelKeyDeletion(ctx context.Context, name string) error {
	return s.changeServerKey(ctx, policy.ActionScheduleKeyDeletion, name, func(k *serverKey, _ time.Time) error {
		if k.DeletionDate.IsZero() {
			return fmt.Errorf("%w: %q is not pending deletion", serverstore.ErrKeyState, name)
		}
		k.DeletionDate, k.Disabled = time.Time{}, true
		return nil
	})
}

// maxTagsPerKey bounds a key's tags, as AWS KMS does.
const maxTagsPerKey = 50

func (s serverOps) TagKey(ctx context.Context, name string, tags map[string]string) error {
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

func (s serverOps) UntagKey(ctx context.Context, name string, keys []string) error {
	return s.changeServerKey(ctx, policy.ActionUntagResource, name, func(k *serverKey, _ time.Time) error {
		for _, t := range keys {
			delete(k.Tags, t)
		}
		return nil
	})
}

func (s serverOps) KeyTags(ctx context.Context, name string) (map[string]string, error) {
	if err := s.authorize(ctx, policy.ActionDescribeKey, name, 0, nil); err != nil {
		return nil, err
	}
	st, err := s.ServerKey(ctx, name)
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
		return fmt.Errorf("%w %q", serverstore.ErrInvalidAlias, alias)
	}
	return nil
}

func (s serverOps) ResolveAlias(ctx context.Context, alias string) (string, error) {
	f, err := s.view(ctx)
	if err != nil {
		return "", err
	}
	if f.Server != nil {
		if name, ok := f.Server.Aliases[alias]; ok {
			return name, nil
		}
	}
	return "", fmt.Errorf("%w: %q", serverstore.ErrAliasNotFound, alias)
}

func (s serverOps) CreateAlias(ctx context.Context, alias, name string) error {
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
			return fmt.Errorf("%w: %q", serverstore.ErrAliasExists, alias)
		}
		if st.Aliases == nil {
			st.Aliases = map[string]string{}
		}
		st.Aliases[alias] = name
		return nil
	})
}

func (s serverOps) DeleteAlias(ctx context.Context, alias string) error {
	name, err := s.ResolveAlias(ctx, alias)
	if err != nil {
		return err
	}
	if err := s.authorize(ctx, policy.ActionDeleteAlias, name, 0, nil); err != nil {
		return err
	}
	return s.update(ctx, func(f *storeFile) error {
		if f.Server == nil || f.Server.Aliases[alias] != name {
			return fmt.Errorf("%w: %q", serverstore.ErrAliasNotFound, alias)
		}
		delete(f.Server.Aliases, alias)
		return nil
	})
}

func (s serverOps) ListAliases(ctx context.Context, name string) ([]serverstore.Alias, error) {
	if err := s.authorize(ctx, policy.ActionListKeys, "*", 0, nil); err != nil {
		return nil, err
	}
	f, err := s.view(ctx)
	if err != nil || f.Server == nil {
		return nil, err
	}
	out := []serverstore.Alias{}
	for _, a := range slices.Sorted(maps.Keys(f.Server.Aliases)) {
		if k := f.Server.Aliases[a]; name == "" || k == name {
			out = append(out, serverstore.Alias{Alias: a, Key: k})
		}
	}
	return out, nil
}

func (s serverOps) DeleteDueKeys(ctx context.Context) ([]string, error) {
	f, err := s.view(ctx)
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
