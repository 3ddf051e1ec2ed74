// Package server is keystack's key server: it serves a keystack keystore
// over the AWS KMS JSON 1.1 wire protocol (POST /, X-Amz-Target:
// TrentService.<Operation>), so the AWS CLI, boto3 and every AWS SDK use
// keystack keys by pointing their KMS endpoint at it.
//
// The server holds the unsealed keystore; callers never see a master key.
// Every request is authenticated to a principal (SigV4 with access keys
// the server issued, a TLS client certificate's SPIFFE ID, or the peer
// user of a Unix socket), decided by the keystore's policy, audited
// (fail closed: no operation without its record), and only then acted on.
// Ciphertext blobs are described in SPEC.md.
package server
