package main

import "github.com/urfave/cli/v2"

// commands lists keystack's commands, one Action function each.
func commands() []*cli.Command {
	return []*cli.Command{
		initCommand(),
		withSubcommands(keyCommand(), keyLifecycleCommands()...),
		encryptCommand(),
		decryptCommand(),
		inspectCommand(),
		rewrapCommand(), inventoryCommand(), rotateCommand(),
		hsmCommand(),
		policyCommand(), auditCommand(),
		passphraseCommand(), sealCommand(), completionCommand(),
		serverCommand(),
	}
}
