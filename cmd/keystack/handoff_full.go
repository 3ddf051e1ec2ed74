//go:build !keystack_lite

package main

import (
	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/keystore"
)

// The complete build runs every command itself; see handoff_lite.go.

func addHandOff([]*cli.Command, string) {}

func storeNeedsFull(*keystore.Store) error { return nil }

func osUserNeedsFull() bool { return false }
