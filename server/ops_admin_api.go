package server

import (
	"encoding/json"
	"errors"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/internal/kmswire"
	"github.com/keystack/keystack/policy"
)

// adminTargetPrefix prefixes keystack's own administration operations in
// X-Amz-Target ("KeystackAdmin.GetPolicy"): the same protocol,
// authentication, decisions and audit as the KMS operations.
const adminTargetPrefix = "KeystackAdmin."

func adminOperations() map[string]operation {
	return map[string]operation{
		"GetPolicy": op(getPolicy), "PutPolicy": op(putPolicy), "SimulatePolicy": op(simulatePolicy),
		"ResetPolicy": op(resetPolicy), "AuditCheckpoint": op(auditCheckpoint), // ops_admin_reset.go
		"VerifyAudit": op(verifyAudit), "ShowAudit": op(showAudit),
		"CreateCredentials": op(createCredentials), "ListCredentials": op(listCredentials),
		"RevokeCredentials": op(revokeCredentials),
		"DecryptDataKey":    op(decryptDataKey), // ops_admin_datakey.go
	}
}

type emptyReq struct{}

// getPolicy: keystack:GetPolicy on "policy".
func getPolicy(c *call, _ *emptyReq) (any, error) {
	p, err := c.s.cfg.Store.Gate().GetPolicy(c.plain())
	if err != nil {
		return nil, err
	}
	doc, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return map[string]string{"Policy": string(doc)}, nil
}

type putPolicyReq struct {
	Policy                         string
	BypassPolicyLockoutSafetyCheck bool
}

// putPolicy replaces the policy for the caller: keystack:PutPolicy, and
// the new policy may grant nothing the caller does not hold.
func putPolicy(c *call, r *putPolicyReq) (any, error) {
	p, err := policy.Parse([]byte(r.Policy))
	if err != nil {
		return nil, kmswire.Errorf("MalformedPolicyDocumentException", "%s", err.Error())
	}
	err = c.s.cfg.Store.Gate().PutPolicy(c.plain(), p, policy.PutOptions{BypassLockoutSafetyCheck: r.BypassPolicyLockoutSafetyCheck})
	if errors.Is(err, policy.ErrLockout) {
		return nil, kmswire.Errorf("MalformedPolicyDocumentException", "the policy would lock the caller out of PutPolicy")
	}
	return struct{}{}, err
}

type simulateReq struct {
	Principal, Action, Resource string
	KeyVersion                  int
	EncryptionContext           map[string]string
}

// simulatePolicy decides a request without acting (keystack:GetPolicy).
func simulatePolicy(c *call, r *simulateReq) (any, error) {
	d, err := c.s.cfg.Store.Gate().SimulatePolicy(c.plain(), policy.Request{Principal: r.Principal, Action: r.Action,
		Resource: r.Resource, KeyVersion: r.KeyVersion, EncryptionContext: r.EncryptionContext})
	if err != nil {
		return nil, err
	}
	return map[string]any{"Decision": d.Effect, "Implicit": d.Implicit, "Statements": d.Matched}, nil
}

// verifyAudit checks the audit log (keystack:ReadAudit on "audit").
func verifyAudit(c *call, _ *emptyReq) (any, error) {
	rep, err := c.s.cfg.Store.Gate().VerifyAudit(c.plain())
	var te *audit.TamperError
	if errors.As(err, &te) {
		return map[string]any{"Valid": false, "Error": "the audit log does not verify"}, nil
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"Valid": true, "Report": rep}, nil
}

type credReq struct{ Principal, AccessKeyId string }

// createCredentials issues an access key (keystack:ManageCredentials on
// "credentials/PRINCIPAL"); the secret is in this answer only.
func createCredentials(c *call, r *credReq) (any, error) {
	cred, err := c.s.cfg.Store.CreateCredential(c.plain(), r.Principal)
	if err != nil {
		return nil, err
	}
	return map[string]any{"AccessKeyId": cred.AccessKeyID, "SecretAccessKey": cred.Secret, "Principal": cred.Principal,
		"CreationDate": epoch(cred.Created)}, nil
}

// listCredentials lists a principal's access keys, never their secrets.
func listCredentials(c *call, r *credReq) (any, error) {
	if r.Principal == "" {
		return nil, kmswire.Errorf("ValidationException", "Principal is required")
	}
	creds, err := c.s.cfg.Store.ListCredentials(c.plain(), r.Principal)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, 0, len(creds))
	for _, cr := range creds {
		out = append(out, map[string]any{"AccessKeyId": cr.AccessKeyID, "Principal": cr.Principal, "CreationDate": epoch(cr.Created)})
	}
	return map[string]any{"Credentials": out}, nil
}

func revokeCredentials(c *call, r *credReq) (any, error) {
	return struct{}{}, c.s.cfg.Store.RevokeCredential(c.plain(), r.AccessKeyId)
}
