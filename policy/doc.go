// Package policy is keystack's access-policy decision point.
//
// Policies are JSON documents modelled on AWS IAM policies (see the IAM JSON
// policy element reference, docs.aws.amazon.com/IAM/latest/UserGuide/
// reference_policies_elements.html): a Version and a list of Statements, each
// with an Effect (Allow or Deny), Principal or NotPrincipal, Action or
// NotAction, Resource or NotResource, and an optional Condition block. Every
// element may be a single string or a list.
//
// # Evaluation
//
// [Evaluate] follows the IAM evaluation logic: an explicit Deny wins, then an
// explicit Allow, otherwise the request is implicitly denied. Actions match
// case-insensitively, resources and principals case-sensitively; all three
// accept the wildcards '*' (any run of characters) and '?' (one character).
//
// Resources name keys ("key/payments") and key versions ("key/payments/v3");
// a request for version 3 of key payments matches a statement that names
// either form, so "key/payments" covers every version. The non-key actions use
// the resources "policy" and "audit".
//
// Principals are "user:<name>", "group:<name>", "service:<name>" or "*". A
// request matches a group principal when the caller lists the group in
// [Request.Groups] (or the store's configuration does).
//
// # Decision point
//
// Operations call one [Authorizer], which returns nil or an error matching
// [ErrAccessDenied]: a [*DeniedError] names the action, resource and
// principal but nothing of the policy. keystack's own (the gate's engine)
// decides with [Policy.Decide], explains denials with [Policy.Evaluate],
// records every decision before it takes effect, failing closed with
// [ErrAuditFailed], and replaces the policy on behalf of a principal: that
// needs keystack:PutPolicy on "policy", [IsSubset] refuses a new policy
// that would grant anyone an action on a resource the writer may not use
// itself, and a new policy under which the writer could no longer replace
// the policy is refused with [ErrLockout] unless [PutOptions] bypass the
// check.
//
// # Condition keys
//
// Condition key names are case-insensitive, values are not: evaluation
// and [IsSubset] compare keys in lower case, so no spelling of a key can
// mean something else to one than to the other. A request whose context
// (or principal tags) holds one key in two spellings with different values
// fails every Allow condition on that key and meets every Deny condition.
//
// Requests from AWS KMS through the XKS proxy (package xks) carry their
// requestMetadata as keystack:xks/FIELD: awsPrincipalArn,
// kmsKeyArn, kmsOperation, kmsRequestId, kmsViaService, awsSourceVpc and
// awsSourceVpce; a field the request leaves out or empty is absent, as a
// missing encryption context key is.
//
// # Simulation
//
// [Policy.Evaluate] explains a decision: the statements that applied and
// why the others did not ([Decision].Reasons, by [ReasonKind]). The
// store's SimulatePolicy (package gate) completes a request with the
// routine enforcement uses and evaluates it under the policy in force, so
// a simulation cannot disagree with enforcement.
//
// # Default policy
//
// A keystore without a policy uses [DefaultPolicy](owner): the owner principal
// may perform every action on every resource, and nobody else may do anything.
package policy
