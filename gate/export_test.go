package gate

import (
	"context"
	"time"

	"github.com/keystack/keystack/internal/gatewire"
	"github.com/keystack/keystack/policy"
)

// SetAnchorEvery sets how often an open Gate moves the state's anchor and
// returns a function restoring the old period.
func SetAnchorEvery(d time.Duration) (restore func()) {
	old := anchorEvery
	anchorEvery = d
	return func() { anchorEvery = old }
}

// Authorize is g's enforcement of req, as its store asks it.
func Authorize(ctx context.Context, g *Gate, req policy.Request) error { return g.authorize(ctx, req) }

// KeptAnchor is the anchor FileAudit(dir) keeps in AnchorFile under key.
func KeptAnchor(dir string, key []byte) (gatewire.AuditAnchor, error) {
	return fileAudit{dir: dir}.loadAnchor(key)
}

// AnchorAhead reports whether a is past b.
func AnchorAhead(a, b gatewire.AuditAnchor) bool { return anchorAhead(a, b) }
