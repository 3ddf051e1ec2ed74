// Package kmsarn holds the strict shapes of the AWS KMS names a user
// types on the command line (a stored key's reference, -k ARN,
// --discovery-account), checked before any AWS setup. Package
// keystore/awskms reads the ARNs that messages carry more leniently and
// leaves the rest to KMS.
package kmsarn

import (
	"regexp"
	"sync"
)

// MaxLen bounds a KMS ARN; real ones are far shorter.
const MaxLen = 2048

// KeyRefShape describes what IsKeyRef accepts, for error messages.
const KeyRefShape = "arn:PARTITION:kms:REGION:ACCOUNT:key/ID or alias/NAME"

// keyRefRE is the full shape of a KMS key or alias ARN. Compiled on first
// use, so that commands that never check one pay nothing at start-up.
var keyRefRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[A-Za-z0-9/_-]+$`)
})

// accountRE is an AWS account ID: twelve digits.
var accountRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]{12}$`) })

// IsKeyRef reports whether ref has the full shape of a KMS key ARN or
// alias ARN (KeyRefShape), at most MaxLen bytes.
func IsKeyRef(ref string) bool { return len(ref) <= MaxLen && keyRefRE().MatchString(ref) }

// IsAccountID reports whether s is an AWS account ID (twelve digits).
func IsAccountID(s string) bool { return accountRE().MatchString(s) }
