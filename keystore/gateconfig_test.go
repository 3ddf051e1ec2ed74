package keystore

import (
	"context"
	"testing"

	"github.com/keystack/keystack/internal/gatewire"
)

// TestGateConfigIsPrivateCopy: the configuration the gate reads comes from
// the state as parsed once (no decode per read), yet is the caller's own:
// changing every part of it (the audit key, the anchor, a principal's
// groups and tags) changes neither the store nor the next copy.
func TestGateConfigIsPrivateCopy(t *testing.T) {
	s := newTestStore(t)
	defer s.Close()
	ctx := context.Background()
	st := gateState{s}
	err := st.UpdateConfig(ctx, func(c *gatewire.Config) error {
		c.Principals = map[string]gatewire.PrincipalConfig{"user:bob": {Groups: []string{"ops"}, Tags: map[string]string{"team": "a"}}}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c, rev, err := st.Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rev == "" || len(c.AuditKey) == 0 || c.AuditAnchor == nil || c.Principals["user:bob"].Tags["team"] != "a" {
		t.Fatalf("config %+v at revision %q", c, rev)
	}
	key := string(c.AuditKey)
	c.AuditKey[0] ^= 1
	c.AuditAnchor.Seq += 100
	c.Principals["user:bob"].Groups[0] = "root"
	c.Principals["user:bob"].Tags["team"] = "b"
	c.Principals["user:eve"] = gatewire.PrincipalConfig{}
	again, rev2, err := st.Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bob := again.Principals["user:bob"]
	if rev2 != rev || string(again.AuditKey) != key || again.AuditAnchor.Seq == c.AuditAnchor.Seq ||
		bob.Groups[0] != "ops" || bob.Tags["team"] != "a" || len(again.Principals) != 1 {
		t.Fatalf("a change to one copy reached the next: %+v", again)
	}
	f, err := s.view(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(f.AuditKey) != key || f.Principals["user:bob"].Tags["team"] != "a" {
		t.Fatal("a change to a copy reached the store's parsed state")
	}
}
