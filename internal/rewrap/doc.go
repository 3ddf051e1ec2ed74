// Package rewrap moves messages to new keys without touching their bodies:
// the machinery behind package rotation's Rewrap, RewrapPaths and
// RewrapFile, which alias its types. It is apart from rotation so that the
// lite CLI's "keystack rewrap" does not link the rotation Runner, whose
// webhooks link net/http. A crash leaves each file holding its old or its
// new message: in-place header rewrites go under a journal (journal.go),
// other rewrites to a file beside it that is renamed over it
// (crashsafe.go), and tree rewraps make their writes durable in batches
// (crashsafe_flush.go).
package rewrap
