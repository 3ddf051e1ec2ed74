package gate

import (
	"context"
	"maps"
	"net/netip"

	"github.com/keystack/keystack/policy"
)

// Caller is who a key server request comes from, as the server
// authenticated it. A store serving many callers (package server) opens
// once and passes each request's Caller in its context (WithCaller); every
// decision the Gate makes for that context is then made, and audited, for
// the Caller instead of the store's own principal.
type Caller struct {
	Principal  string     // "service:billing", "user:alice", "service:spiffe://…"
	AuthMethod string     // "sigv4", "mtls", "unix"
	SourceIP   netip.Addr // the peer address; invalid for a Unix socket
	RequestID  string     // the server's request ID, audited with every decision
	// ResourceTags are the tags of the key the request names
	// (keystack:ResourceTag/…), looked up by the server.
	ResourceTags map[string]string
	// XKS holds an AWS KMS XKS proxy request's requestMetadata fields,
	// the keystack:xks/FIELD condition keys.
	XKS map[string]string
}

type callerKey struct{}

// WithCaller returns a context whose decisions are made for c. An empty
// Principal is refused by every decision (the policy names no empty
// principal), so a server bug cannot fall back to the store's principal.
func WithCaller(ctx context.Context, c Caller) context.Context {
	c.ResourceTags = maps.Clone(c.ResourceTags)
	c.XKS = maps.Clone(c.XKS)
	return context.WithValue(ctx, callerKey{}, &c)
}

// callerOf returns the Caller ctx carries, or nil.
func callerOf(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

// scope rewrites req for the caller in ctx, if any.
func scope(ctx context.Context, req policy.Request) policy.Request {
	c := callerOf(ctx)
	if c == nil {
		return req
	}
	req.Principal, req.AuthMethod, req.SourceIP, req.RequestID = c.Principal, c.AuthMethod, c.SourceIP, c.RequestID
	req.XKS = c.XKS
	if req.Resource != policy.ResourcePolicy && req.Resource != policy.ResourceAudit {
		req.ResourceTags = c.ResourceTags
	}
	return req
}
