// Package kmswire holds the wire-level pieces of the AWS KMS JSON 1.1
// protocol that both keystack's KMS test server (internal/kmstest)
// and the key server (package server) speak: error responses, the
// X-Amz-Target header, and AWS Signature Version 4 parsing and
// verification. It decides nothing and knows no keys.
package kmswire
