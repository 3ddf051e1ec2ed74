package gate

import "time"

// SetAnchorEvery sets how often an open Gate moves the state's anchor and
// returns a function restoring the old period.
func SetAnchorEvery(d time.Duration) (restore func()) {
	old := anchorEvery
	anchorEvery = d
	return func() { anchorEvery = old }
}
