// Package keystack holds no code: it documents how the module is layered
// and its tests enforce that layering (layers_test.go) and the module's
// size rules (funclen_test.go). README.md, section Architecture, draws the
// layers; the table in layers_test.go is the rule.
//
// From the bottom up, each layer imports only the layers below it:
//
//	cmd/keystack             the CLI: flags, output and exit codes; may import anything
//	server, xks, rotation    the key server, the XKS proxy, rotation and rewrap, over keystore
//	keystore                 the local Store: keys, versions, sealing, locking, persistence
//	hsm, keystore/awskms     key backends: envelope and keyring only (awskms: also internal/safetext)
//	gate                     the policy enforcement point: engine, policy administration, audit lifecycle
//	keyring                  keyring primitives (raw AES/RSA, multi, caching); keyring/keyringtest
//	envelope, policy, audit  the message format, the decision point, the audit log: nothing of keystack
//	internal/...             leaf helpers (fsx, kmswire, safetext, testhook); internal/esdktest (tests) reads envelope
package keystack
