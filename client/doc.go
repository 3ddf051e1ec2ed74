// Package client talks to a keystack key server (package server,
// `keystack server`) as the keystack CLI's server mode does: data keys
// come from the server through keystack's AWS KMS keyring, so message
// bodies never travel; keys, the policy, the audit log and access keys are
// managed through the server's AWS KMS and KeystackAdmin APIs.
//
// # Endpoints and failover
//
// A [Client] is given one or more endpoints ([Config].Endpoints):
// unix:///path (the server's Unix socket; the caller is its OS user),
// https://host:port (optionally with a client certificate for mutual TLS),
// and http://host:port on a loopback address only (tests). Every call
// starts at the endpoint that last answered and fails over, in order, to
// the next one. A request is retried on another endpoint, after at most
// [Config].Rounds passes over the list with exponential backoff between
// passes, when:
//
//   - the connection failed before the request was written (refused,
//     no such socket, DNS, TLS handshake): any operation, since the server
//     cannot have acted on it;
//   - the request was written but the connection broke or timed out
//     before an answer, or the server answered with a 5xx status: only an
//     idempotent operation (reads, data-key and crypto operations,
//     enabling and disabling keys and rotation, tags, PutPolicy). A
//     non-idempotent one (CreateKey, RotateKeyOnDemand, CreateAlias,
//     CreateCredentials, …) fails with [ErrUnavailable] and a message
//     saying it may have been applied, never applied twice.
//
// # Authentication
//
// With [Config].AccessKeyID and SecretAccessKey every request is signed
// with AWS Signature Version 4 (service kms, [Config].Region), per endpoint
// and attempt. Without them requests are unsigned and the server knows the
// caller by its TLS client certificate ([Config].CertFile) or, on a Unix
// socket, its OS user.
package client
