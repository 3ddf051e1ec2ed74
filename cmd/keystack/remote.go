package main

// This file is the CLI's server mode: with --server (or $KEYSTACK_SERVER)
// the commands listed in remoteCommands act on a keystack server through
// package client instead of on the local keystore. It only parses flags
// and prints; package client holds the logic. The commands' server-mode
// actions, which link package client, are in remote_full.go and
// remote_ops.go.

import (
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/keystack/keystack/internal/clientenv"
)

// Server mode reads package client's environment variables
// (clientenv). The secret is read only from the environment, never from
// a flag (argv is visible to other users).
const (
	envServer       = clientenv.Server
	serverFlagUsage = "act through the keystack server at `URL`: unix:///path, https://host:port, http://127.0.0.1:port (tests); " +
		"repeat it (or comma-separate in $KEYSTACK_SERVER) for failover"
)

// serverFlags are the flags of every command that has a server mode.
func serverFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "server", EnvVars: []string{envServer}, Usage: serverFlagUsage},
		&cli.StringFlag{Name: "server-ca", EnvVars: []string{clientenv.ServerCA}, Usage: "verify https servers against the CA certificates in `FILE` (PEM)"},
		&cli.StringFlag{Name: "client-cert", EnvVars: []string{clientenv.ClientCert}, Usage: "TLS client certificate `FILE` (PEM) for mutual TLS with the server"},
		&cli.StringFlag{Name: "client-key", EnvVars: []string{clientenv.ClientKey}, Usage: "private key `FILE` (PEM) of --client-cert"},
		&cli.StringFlag{Name: "server-region", EnvVars: []string{clientenv.ServerRegion}, Value: clientenv.DefaultRegion, Usage: "the server's --region, for SigV4 signatures"},
		&cli.DurationFlag{Name: "server-timeout", EnvVars: []string{clientenv.ServerTimeout}, Value: clientenv.DefaultTimeout, Usage: "give up on a server call, failover included, after `DURATION`"},
	}
}

// remoteCommands are the commands that have a server mode, by their path
// below the app: remoteRun runs them on the server. Those marked true check
// their flags first and then call remoteAuditShow or remoteSimulate.
var remoteCommands = map[string]bool{
	"encrypt": false, "decrypt": false,
	"key create": false, "key list": false, "key show": false, "key rotate": false,
	"policy get": false, "policy put": false, "policy reset": false, "policy simulate": true,
	"audit verify": false, "audit show": true, "audit checkpoint": false,
	"audit reset-anchor": false, "passphrase change": false,
	"server credentials create": false, "server credentials list": false, "server credentials revoke": false,
}

// addServerMode gives each command of remoteCommands the server flags and
// runs its server-mode action when a server is named.
func addServerMode(cmds []*cli.Command, prefix string) {
	for _, cmd := range cmds {
		path := strings.TrimSpace(prefix + " " + cmd.Name)
		addServerMode(cmd.Subcommands, path)
		own, ok := remoteCommands[path]
		if !ok {
			warnLocal(cmd, path)
			continue
		}
		cmd.Flags = append(cmd.Flags, serverFlags()...)
		if own {
			continue
		}
		local := cmd.Action
		cmd.Action = func(c *cli.Context) error {
			if !serverMode(c) {
				return local(c)
			}
			return remoteRun(c, path)
		}
	}
}

// noStore are the commands that neither open a keystore nor have a
// server mode: they need no warning under $KEYSTACK_SERVER.
var noStore = map[string]bool{"inspect": true, "completion": true, "policy validate": true, "server": true, "help": true}

// warnLocal makes a leaf command without a server mode warn, when
// $KEYSTACK_SERVER is set, that it acts on the local keystore.
func warnLocal(cmd *cli.Command, path string) {
	if cmd.Action == nil || len(cmd.Subcommands) > 0 || noStore[path] {
		return
	}
	local := cmd.Action
	cmd.Action = func(c *cli.Context) error {
		if strings.TrimSpace(os.Getenv(envServer)) != "" && !handedOff { // a lite build warned before handing off
			warnf(c.App.ErrWriter, "%s is set, but \"keystack %s\" has no server mode: it acts on the local keystore", envServer, path)
		}
		return local(c)
	}
}

// serverMode reports whether --server or $KEYSTACK_SERVER names a server.
func serverMode(c *cli.Context) bool {
	for _, s := range c.StringSlice("server") {
		if strings.TrimSpace(strings.ReplaceAll(s, ",", "")) != "" {
			return true
		}
	}
	return false
}
