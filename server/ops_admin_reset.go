package server

// resetPolicy is the break-glass reset over the server: it replaces the
// policy with the owner-only default only when the policy allows the
// caller keystack:ResetPolicy on "policy" AND the caller came over the
// Unix socket (SO_PEERCRED, no signature) as the user who owns the
// keystore directory, the one who could reset it locally. Anything else
// is AccessDeniedException and changes nothing; every attempt is audited
// (gate.Gate.ResetPolicyFor).
func resetPolicy(c *call, _ *emptyReq) (any, error) {
	owner, err := c.s.cfg.Store.Gate().ResetPolicyFor(c.plain(), c.ownsStore())
	if err != nil {
		return nil, err
	}
	return map[string]string{"Owner": owner}, nil
}

// ownsStore reports whether the caller is, by its Unix socket's peer
// credentials, the owner of the keystore directory.
func (c *call) ownsStore() bool {
	if c.caller.AuthMethod != authUnix {
		return false
	}
	u := dirOwnerUser(c.s.cfg.Store.Dir())
	return u != "" && c.caller.Principal == "user:"+u
}

// auditCheckpoint writes a checkpoint to the audit log and advances the
// keystore's anchor (keystack:ReadAudit on "audit", as the local `audit
// checkpoint`; the decision is audited). The answer's Anchor is the
// head `keystack audit verify --anchor` reads.
func auditCheckpoint(c *call, _ *emptyReq) (any, error) {
	a, err := c.s.cfg.Store.Gate().AuditCheckpoint(c.plain())
	if err != nil {
		return nil, err
	}
	return map[string]any{"Anchor": a}, nil
}
