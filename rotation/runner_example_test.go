package rotation_test

import (
	"context"
	"fmt"
	"os"

	"github.com/keystack/keystack/keystore"
	"github.com/keystack/keystack/rotation"
)

// The shape of `keystack rotate run` for cron: one pass, non-zero exit if
// any due key failed to rotate.
func ExampleRunner_RunOnce() {
	var store *keystore.Store // the opened key store
	r := &rotation.Runner{Store: store}
	rep, err := r.RunOnce(context.Background())
	for _, k := range rep.Rotated {
		fmt.Printf("rotated %s: version %d -> %d\n", k.Key, k.OldVersion, k.NewVersion)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "keystack: error:", err)
		os.Exit(1)
	}
}
