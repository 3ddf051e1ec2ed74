package keystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/keystack/keystack/internal/gatewire"

	"github.com/keystack/keystack/gate"
)

// Files of the access-control layer, next to keystore.json.
const policyFile = "policy.json"

// resourceKeystore names the store itself in audit records of operations
// no policy decides (a passphrase change, a failed unlock).
const resourceKeystore = "keystore"

// PrincipalEnv names the environment variable Open takes the principal
// from when OpenOptions.PrincipalFromEnv is set and the store was
// initialized to trust it (InitOptions.TrustPrincipalEnv, for tests and CI).
const PrincipalEnv = "KEYSTACK_PRINCIPAL"

// Principal returns who the store acts as.
func (s *Store) Principal() string { return s.principal }

// Gate returns the store's policy enforcement point: policy
// administration (GetPolicy, PutPolicy, SimulatePolicy, ResetPolicy) and
// the audit lifecycle (AuditLog, VerifyAudit, AuditCheckpoint,
// ResetAuditAnchor). Every Store from Open or Init has one.
func (s *Store) Gate() *gate.Gate { return s.gate }

// openGate installs the store's decision point: with a caller-supplied
// Authorizer it only scopes requests to their Caller; otherwise it decides
// by the store's policy and records into OpenOptions.Audit (audit.log in
// the store directory by default), so that no Store works without a
// decision point.
func (s *Store) openGate(ctx context.Context, opts OpenOptions) error {
	dest := opts.Audit
	if dest == nil {
		dest = gate.FileAudit(s.dir)
	}
	g, enf, err := gatewire.Open[gate.AuditDestination, *gate.Gate](ctx, gateState{s}, dest,
		gatewire.Options{Principal: s.principal, Authorizer: opts.Authorizer, AuditSync: opts.AuditSync, Now: s.now})
	if err != nil {
		return err
	}
	s.gate, s.enf, s.principal = g, enf, enf.Principal()
	return nil
}

// gateState is the Store's state as its gate sees it (gatewire.State).
type gateState struct{ s *Store }

// Config copies the configuration out of the state as last parsed (view),
// so that the gate's reads of it (at Open, at Close to advance the audit
// anchor) do not decode keystore.json again.
func (g gateState) Config(ctx context.Context) (*gatewire.Config, string, error) {
	f, rev, err := g.s.viewRev(ctx)
	if err != nil {
		return nil, "", err
	}
	return cloneConfig(&f.Config), string(rev), nil
}

// cloneConfig returns a deep copy of c: the caller may change it.
func cloneConfig(c *gatewire.Config) *gatewire.Config {
	out := *c
	out.AuditKey = bytes.Clone(c.AuditKey)
	if c.AuditAnchor != nil {
		a := *c.AuditAnchor
		out.AuditAnchor = &a
	}
	if c.Principals != nil {
		out.Principals = make(map[string]gatewire.PrincipalConfig, len(c.Principals))
		for name, p := range c.Principals {
			p.Groups, p.Tags = slices.Clone(p.Groups), maps.Clone(p.Tags)
			out.Principals[name] = p
		}
	}
	return &out
}

func (g gateState) ConfigRevision(ctx context.Context) string {
	return string(g.s.stateRevision(ctx, false))
}

func (g gateState) UpdateConfig(ctx context.Context, fn func(*gatewire.Config) error) error {
	return g.s.update(ctx, func(f *storeFile) error {
		err := fn(&f.Config)
		if errors.Is(err, gatewire.ErrUnchanged) {
			return errUnchanged
		}
		return err
	})
}

func (g gateState) ReadPolicy(ctx context.Context) ([]byte, string, error) {
	data, rev, err := g.s.st.Read(ctx, PolicyDocument)
	if errors.Is(err, ErrNoDocument) {
		return nil, "", gatewire.ErrNoPolicy
	}
	return data, string(rev), err
}

func (g gateState) PolicyRevision(ctx context.Context) (string, error) {
	rev, err := g.s.st.Revision(ctx, PolicyDocument)
	return string(rev), err
}

func (g gateState) WritePolicy(ctx context.Context, data []byte, prev string) error {
	_, err := g.s.st.Write(ctx, PolicyDocument, data, Revision(prev))
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("keystore: write %s: %w", policyFile, err)
	}
	return err
}

func (g gateState) Lock(ctx context.Context) (func(), error) { return g.s.st.Lock(ctx) }

func (g gateState) CheckPassphrase(ctx context.Context) (bool, error) {
	f, err := g.s.view(ctx)
	if err != nil || f.Insecure {
		return false, err
	}
	kek, err := g.s.unlockKEK(f)
	clear(kek)
	return true, err
}

// auditFailedUnlock records err in the audit log when it is a wrong
// passphrase, and returns err (also saying so if the record failed).
func (s *Store) auditFailedUnlock(err error) error {
	if !errors.Is(err, ErrBadPassphrase) || s.enf == nil {
		return err
	}
	if aerr := s.enf.RecordFailedUnlock(context.Background()); aerr != nil {
		return fmt.Errorf("%w (and recording it in the audit log failed: %v)", err, aerr)
	}
	return err
}
