// Package clientenv names the environment variables and defaults of a
// key server client, shared by package client (ConfigFromEnv, Config's
// defaults) and the CLI's server mode (its flags read the same
// variables and show the same defaults).
package clientenv

import "time"

// Environment variables: the server endpoints (comma-separated), the TLS
// files, the SigV4 Region, the call timeout and the access key.
const (
	Server        = "KEYSTACK_SERVER"
	ServerCA      = "KEYSTACK_SERVER_CA"
	ClientCert    = "KEYSTACK_CLIENT_CERT"
	ClientKey     = "KEYSTACK_CLIENT_KEY"
	ServerRegion  = "KEYSTACK_SERVER_REGION"
	ServerTimeout = "KEYSTACK_SERVER_TIMEOUT"
	AccessKeyID   = "KEYSTACK_ACCESS_KEY_ID"
	SecretKey     = "KEYSTACK_SECRET_ACCESS_KEY"
)

// Defaults of client.Config's Region and Timeout.
const (
	DefaultRegion  = "us-east-1"
	DefaultTimeout = 10 * time.Second
)
