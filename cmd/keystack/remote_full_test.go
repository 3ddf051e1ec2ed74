//go:build !keystack_lite

package main

import "testing"

// TestRemoteActionsMatchCommands: the complete build has a server-mode
// action for each command of remoteCommands that does not call its own,
// and none for another command (the lite build knows only remoteCommands).
func TestRemoteActionsMatchCommands(t *testing.T) {
	t.Parallel()
	for path, own := range remoteCommands {
		if _, ok := remoteActions[path]; ok == own {
			t.Errorf("%q: server-mode action in remoteActions %v, calls its own %v", path, ok, own)
		}
	}
	for path := range remoteActions {
		if _, ok := remoteCommands[path]; !ok {
			t.Errorf("%q has a server-mode action but is not in remoteCommands", path)
		}
	}
}
