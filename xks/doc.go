// Package xks serves the AWS KMS External Key Store (XKS) proxy API
// (github.com/aws/aws-kms-xksproxy-api-spec, xks_proxy_api_spec.md) over
// keystack keys, so that AWS KMS encrypts and decrypts with keys that stay
// in keystack: local AES keys or PKCS#11 AES token keys.
//
// A Handler serves POST {prefix}/kms/xks/v1/keys/{externalKeyId}/metadata,
// …/encrypt, …/decrypt and {prefix}/kms/xks/v1/health for each configured
// path prefix. Every request is authenticated with SigV4 (service
// kms-xks-proxy) against the prefix's credentials and, when the prefix
// asks for it, a TLS client certificate chained to the prefix's CA with
// the configured subject common name. The externalKeyId is a keystack key
// name, which must be in the prefix's allow-list.
//
// Key operations are keystack policy decisions, audited with the
// kmsRequestId as request ID: keystack:DescribeKey (metadata),
// keystack:Encrypt and keystack:Decrypt on key/NAME, for the prefix's
// principal, with the request metadata as condition keys
// keystack:xks/awsPrincipalArn, keystack:xks/kmsKeyArn,
// keystack:xks/kmsOperation, keystack:xks/kmsRequestId,
// keystack:xks/kmsViaService, keystack:xks/awsSourceVpc and
// keystack:xks/awsSourceVpce. The health check is excluded from
// authorization, as the specification requires.
package xks
