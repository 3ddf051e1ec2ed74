package policy

import "strings"

// Actions a policy can allow or deny. Matching is case-insensitive, as in IAM.
const (
	ActionEncrypt             = "keystack:Encrypt"
	ActionDecrypt             = "keystack:Decrypt"
	ActionGenerateDataKey     = "keystack:GenerateDataKey"
	ActionReWrap              = "keystack:ReWrap"
	ActionCreateKey           = "keystack:CreateKey"
	ActionImportKey           = "keystack:ImportKey"
	ActionRotateKey           = "keystack:RotateKey"
	ActionEnableKey           = "keystack:EnableKey"
	ActionDisableKey          = "keystack:DisableKey"
	ActionScheduleKeyDeletion = "keystack:ScheduleKeyDeletion"
	ActionDescribeKey         = "keystack:DescribeKey"
	ActionListKeys            = "keystack:ListKeys"
	ActionGetPolicy           = "keystack:GetPolicy"
	ActionPutPolicy           = "keystack:PutPolicy"
	ActionReadAudit           = "keystack:ReadAudit"
	// Actions the key server's KMS API needs beyond the above.
	ActionCreateAlias       = "keystack:CreateAlias"       // on the key the alias names
	ActionDeleteAlias       = "keystack:DeleteAlias"       // on the key the alias names
	ActionTagResource       = "keystack:TagResource"       // on the key
	ActionUntagResource     = "keystack:UntagResource"     // on the key
	ActionGenerateRandom    = "keystack:GenerateRandom"    // on "random"
	ActionManageCredentials = "keystack:ManageCredentials" // on "credentials/PRINCIPAL"
	// ActionResetPolicy is the key server's break-glass reset, on
	// "policy": the policy must allow it AND the caller must be the
	// keystore directory's owner on the server's Unix socket. The local
	// reset needs the passphrase instead, whatever the policy says.
	ActionResetPolicy = "keystack:ResetPolicy"
)

// Resources of the non-key actions.
const (
	ResourcePolicy = "policy"
	ResourceAudit  = "audit"
	// ResourceRandom is GenerateRandom's resource.
	ResourceRandom = "random"
	// ResourceCredentialsPrefix + principal names that principal's key
	// server credentials.
	ResourceCredentialsPrefix = "credentials/"
)

// Actions lists every action, in a fixed order.
var Actions = []string{
	ActionEncrypt, ActionDecrypt, ActionGenerateDataKey, ActionReWrap,
	ActionCreateKey, ActionImportKey, ActionRotateKey, ActionEnableKey,
	ActionDisableKey, ActionScheduleKeyDeletion, ActionDescribeKey,
	ActionListKeys, ActionGetPolicy, ActionPutPolicy, ActionReadAudit,
	ActionCreateAlias, ActionDeleteAlias, ActionTagResource, ActionUntagResource,
	ActionGenerateRandom, ActionManageCredentials, ActionResetPolicy,
}

// canonicalAction returns the listed spelling of a, or "" if a is unknown.
func canonicalAction(a string) string {
	for _, known := range Actions {
		if strings.EqualFold(a, known) {
			return known
		}
	}
	return ""
}
