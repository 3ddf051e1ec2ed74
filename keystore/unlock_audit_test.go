package keystore

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// A wrong passphrase leaves an audit record naming the principal and the
// outcome, and never the passphrase tried.
func TestFailedUnlockIsAudited(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	mustCreate(t, s, "k")
	wrong := openTestStore(t, s.Dir(), "wrong horse battery")
	if _, err := wrong.EncryptKeyring(ctx, "k"); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	wrong.Close()
	r, err := s.Gate().AuditLog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	var found int
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, `"action":"keystack:Unlock"`) && strings.Contains(line, `"outcome":"bad-passphrase"`) &&
			strings.Contains(line, `"principal":"`+s.principal+`"`) {
			found++
		}
	}
	if found != 1 {
		t.Fatalf("%d failed-unlock records, want 1; log:\n%s", found, data)
	}
	if strings.Contains(string(data), "wrong horse") {
		t.Fatal("the audit log holds the passphrase tried")
	}
	if _, err := s.Gate().VerifyAudit(ctx); err != nil {
		t.Fatalf("verify after the record: %v", err)
	}
}
