package kmsarn

import (
	"strings"
	"testing"
)

// TestIsKeyRef: the strict shape of a key reference a user gives.
func TestIsKeyRef(t *testing.T) {
	for _, ok := range []string{
		"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"arn:aws-cn:kms:cn-north-1:111122223333:alias/app/x",
	} {
		if !IsKeyRef(ok) {
			t.Errorf("IsKeyRef(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", "alias/x", "arn:aws:kms:us-east-1:1111:key/x", "arn:aws:s3:us-east-1:111122223333:key/x",
		"arn:aws:kms:us-east-1:111122223333:grant/x", "arn:aws:kms:us-east-1:111122223333:key/a b",
		"arn:aws:kms:us-east-1:111122223333:key/" + strings.Repeat("a", MaxLen)} {
		if IsKeyRef(bad) {
			t.Errorf("IsKeyRef(%.60q) = true", bad)
		}
	}
	if !IsAccountID("111122223333") || IsAccountID("11112222333") || IsAccountID("11112222333x") {
		t.Error("IsAccountID accepts other than twelve digits")
	}
}
