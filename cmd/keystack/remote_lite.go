//go:build keystack_lite

package main

// The lite build's stand-ins for remote_full.go: server mode is handed to
// keystack-full before a command runs (flagsNeedFull), and these hand it
// off too.

import (
	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/audit"
	"github.com/keystack/keystack/policy"
)

func remoteRun(*cli.Context, string) error { return errNeedsFull }

func remoteAuditShow(*cli.Context, audit.Filter) error { return errNeedsFull }

func remoteSimulate(*cli.Context, policy.Request) error { return errNeedsFull }

// No key server error occurs in this build: nil matches no error.
var (
	errServerTLSTrust error
	serverKeyErrors   []error
)

func isServerUnavailable(error) bool { return false }
