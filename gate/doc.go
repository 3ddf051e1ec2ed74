// Package gate is keystack's policy enforcement point: everything between
// a request and the key material that decides whether it may proceed and
// leaves a record of the decision.
//
// A Gate
//
//   - builds the policy engine (package policy) from the store's policy
//     document, or the owner's default policy when there is none, and
//     follows a document another process replaced;
//   - authorizes every request for the store's
//     principal, or for the key server's Caller in the context: key
//     requests are built in one place, completed once, by the engine
//     (internal/policyengine), for enforcement and simulation alike, and
//     decisions carry structured reasons (policy.Reason);
//   - guards the keyrings the store hands out: each message's use
//     of a key is decided for its encryption context before the key acts;
//   - administers the policy: GetPolicy, PutPolicy, SimulatePolicy and the
//     owner's break-glass ResetPolicy;
//   - owns the audit lifecycle: it opens the log at the anchor the store
//     keeps, records every decision before the operation proceeds, moves
//     the anchor, checkpoints, verifies, and resets after damage.
//
// The gate holds no key material and reads no key records. It reaches the store's persistent state
// through internal/gatewire's State (implemented by package keystore) and
// writes its records to an AuditDestination (FileAudit for one node; a
// database for several). keystore.Store opens its Gate at Open
// (gatewire.Open) and asks it before every operation (gatewire.Enforcer),
// so no Store acts undecided or unrecorded; callers reach the
// administration, this package's public API, through keystore.Store.Gate.
package gate
