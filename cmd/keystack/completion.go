package main

// Shell completion: "keystack completion bash|zsh|fish" prints a script
// to source. The bash and zsh scripts ask keystack itself for the
// candidates (cli's --generate-bash-completion), so they follow the
// commands and flags of the installed binary; fish gets a static list
// generated from the same command tree.

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "SHELL",
		Description: "Load it in the shell's start-up file:\n" +
			"   bash: source <(keystack completion bash)\n" +
			"   zsh:  source <(keystack completion zsh)\n" +
			"   fish: keystack completion fish | source",
		Action: completionAction,
	}
}

func completionAction(c *cli.Context) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	switch a[0] {
	case "bash":
		_, err = fmt.Fprint(c.App.Writer, bashCompletion)
	case "zsh":
		_, err = fmt.Fprint(c.App.Writer, zshCompletion)
	case "fish":
		var s string
		if s, err = c.App.ToFishCompletion(); err == nil {
			_, err = fmt.Fprint(c.App.Writer, s)
		}
	default:
		return usagef("completion %q: want bash, zsh or fish", a[0])
	}
	return err
}

// bashCompletion completes the word under the cursor with the candidates
// keystack prints for the words before it; files otherwise.
const bashCompletion = `# keystack completion for bash: source <(keystack completion bash)
_keystack_complete() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local -a words=("${COMP_WORDS[@]:0:COMP_CWORD}")
    [[ $cur == -* ]] && words+=("$cur")
    local candidates
    candidates=$("${words[@]}" --generate-bash-completion 2>/dev/null)
    COMPREPLY=($(compgen -W "$candidates" -- "$cur"))
}
complete -o bashdefault -o default -F _keystack_complete keystack
`

// zshCompletion does the same for zsh.
const zshCompletion = `#compdef keystack
# keystack completion for zsh: source <(keystack completion zsh)
_keystack() {
    local -a candidates words_before
    words_before=("${(@)words[1,CURRENT-1]}")
    [[ ${words[CURRENT]} == -* ]] && words_before+=("${words[CURRENT]}")
    candidates=("${(@f)$("${words_before[@]}" --generate-bash-completion 2>/dev/null)}")
    if (( ${#candidates} )) && [[ -n ${candidates[1]} ]]; then
        compadd -a candidates
    else
        _files
    fi
}
if (( $+functions[compdef] )); then
    compdef _keystack keystack
fi
`
