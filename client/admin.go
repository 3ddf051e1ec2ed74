package client

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/keystack/keystack/audit"
)

// GetPolicy returns the policy in force, as JSON (keystack:GetPolicy).
func (c *Client) GetPolicy(ctx context.Context) (json.RawMessage, error) {
	var out struct{ Policy string }
	if err := c.admin(ctx, "GetPolicy", struct{}{}, &out); err != nil {
		return nil, err
	}
	if !json.Valid([]byte(out.Policy)) {
		return nil, fmt.Errorf("keystack server: GetPolicy: the policy is not JSON")
	}
	return json.RawMessage(out.Policy), nil
}

// PutPolicy replaces the policy (keystack:PutPolicy): the server refuses
// a policy that grants the caller anything it does not hold
// (ErrAccessDenied) or, unless bypassLockout, leaves it without
// keystack:PutPolicy (an APIError MalformedPolicyDocumentException).
func (c *Client) PutPolicy(ctx context.Context, doc []byte, bypassLockout bool) error {
	return c.admin(ctx, "PutPolicy", map[string]any{"Policy": string(doc), "BypassPolicyLockoutSafetyCheck": bypassLockout}, nil)
}

// SimulateRequest is a request SimulatePolicy decides without acting.
type SimulateRequest struct {
	Principal, Action, Resource string
	KeyVersion                  int               `json:",omitempty"`
	EncryptionContext           map[string]string `json:",omitempty"`
}

// Decision is the policy's answer to a simulated request.
type Decision struct {
	Decision   string   `json:"decision"`
	Implicit   bool     `json:"implicit"`
	Statements []string `json:"statements"`
}

// SimulatePolicy decides r under the server's policy (keystack:GetPolicy).
func (c *Client) SimulatePolicy(ctx context.Context, r SimulateRequest) (Decision, error) {
	var out struct {
		Decision   string
		Implicit   bool
		Statements []string
	}
	if err := c.admin(ctx, "SimulatePolicy", r, &out); err != nil {
		return Decision{}, err
	}
	return Decision{Decision: out.Decision, Implicit: out.Implicit, Statements: out.Statements}, nil
}

// VerifyAudit has the server verify its audit log (keystack:ReadAudit)
// and returns its report; a log that does not verify is ErrAuditInvalid.
func (c *Client) VerifyAudit(ctx context.Context) (json.RawMessage, error) {
	var out struct {
		Valid  bool
		Error  string
		Report json.RawMessage
	}
	if err := c.admin(ctx, "VerifyAudit", struct{}{}, &out); err != nil {
		return nil, err
	}
	if !out.Valid {
		return nil, fmt.Errorf("%w: %s", ErrAuditInvalid, out.Error)
	}
	return out.Report, nil
}

// Credential is a server access key. Secret is set only in the answer to
// CreateCredentials.
type Credential struct {
	AccessKeyID string    `json:"access_key_id"`
	Principal   string    `json:"principal"`
	Created     time.Time `json:"created"`
	Secret      string    `json:"secret_access_key,omitempty"`
}

type wireCredential struct {
	AccessKeyId, SecretAccessKey, Principal string
	CreationDate                            float64
}

func (w wireCredential) credential() Credential {
	sec := int64(w.CreationDate)
	return Credential{AccessKeyID: w.AccessKeyId, Principal: w.Principal, Secret: w.SecretAccessKey,
		Created: time.Unix(sec, int64((w.CreationDate-float64(sec))*1e9)).UTC().Truncate(time.Second)}
}

// CreateCredentials issues an access key for principal
// (keystack:ManageCredentials on credentials/PRINCIPAL). It is never
// retried after it reached a server, so it cannot issue two keys.
func (c *Client) CreateCredentials(ctx context.Context, principal string) (Credential, error) {
	var out wireCredential
	if err := c.admin(ctx, "CreateCredentials", map[string]string{"Principal": principal}, &out); err != nil {
		return Credential{}, err
	}
	return out.credential(), nil
}

// ListCredentials lists principal's access keys, never their secrets.
func (c *Client) ListCredentials(ctx context.Context, principal string) ([]Credential, error) {
	var out struct{ Credentials []wireCredential }
	if err := c.admin(ctx, "ListCredentials", map[string]string{"Principal": principal}, &out); err != nil {
		return nil, err
	}
	creds := make([]Credential, 0, len(out.Credentials))
	for _, w := range out.Credentials {
		creds = append(creds, w.credential())
	}
	return creds, nil
}

// RevokeCredentials revokes an access key; the server refuses it from
// its next request on.
func (c *Client) RevokeCredentials(ctx context.Context, accessKeyID string) error {
	return c.admin(ctx, "RevokeCredentials", map[string]string{"AccessKeyId": accessKeyID}, nil)
}

// AuditQuery selects audit records for ShowAudit; empty fields match all.
type AuditQuery struct {
	Principal, Key, Action string
	Since, Until           time.Time
	// Limit is the most records returned (the most recent that match);
	// 0 is the server's default (1000), at most 5000.
	Limit int
}

// ShowAudit returns the most recent audit records that match q, oldest
// first (keystack:ReadAudit); truncated says older ones were left out.
func (c *Client) ShowAudit(ctx context.Context, q AuditQuery) (records []audit.Entry, truncated bool, err error) {
	in := map[string]any{"Principal": q.Principal, "Key": q.Key, "Action": q.Action, "Limit": q.Limit}
	if !q.Since.IsZero() {
		in["Since"] = q.Since.UTC().Format(time.RFC3339Nano)
	}
	if !q.Until.IsZero() {
		in["Until"] = q.Until.UTC().Format(time.RFC3339Nano)
	}
	var out struct {
		Records   []audit.Entry
		Truncated bool
	}
	if err := c.admin(ctx, "ShowAudit", in, &out); err != nil {
		return nil, false, err
	}
	return out.Records, out.Truncated, nil
}

// ResetPolicy is the break-glass reset (keystack:ResetPolicy): the server
// replaces the policy with the owner-only default only for a caller the
// policy allows it AND that is, on the server's Unix socket, the owner of
// the keystore directory; others get ErrAccessDenied and nothing changes.
// It returns the owner the new policy names.
func (c *Client) ResetPolicy(ctx context.Context) (string, error) {
	var out struct{ Owner string }
	if err := c.admin(ctx, "ResetPolicy", struct{}{}, &out); err != nil {
		return "", err
	}
	if out.Owner == "" {
		return "", fmt.Errorf("keystack server: ResetPolicy: the answer names no owner")
	}
	return out.Owner, nil
}

// AuditCheckpoint has the server checkpoint its audit log and advance its
// anchor (keystack:ReadAudit); it returns the anchor, the head
// `keystack audit verify --anchor` reads.
func (c *Client) AuditCheckpoint(ctx context.Context) (audit.Anchor, error) {
	var out struct{ Anchor audit.Anchor }
	if err := c.admin(ctx, "AuditCheckpoint", struct{}{}, &out); err != nil {
		return audit.Anchor{}, err
	}
	if out.Anchor.Seq == 0 || out.Anchor.Head == "" {
		return audit.Anchor{}, fmt.Errorf("keystack server: AuditCheckpoint: the answer holds no anchor")
	}
	return out.Anchor, nil
}
