package cli

import (
	"context"
	"fmt"
	"strings"
)

// Completion scripts complete subcommands and, for -i/--inventory, file names; they
// call nothing at completion time so they work on any machine.
func runCompletion(ctx context.Context, args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(Stderr, "Usage: haltfleet completion bash|zsh|fish")
		return exitUsage
	}
	cmds := strings.Join(commandNames(), " ")
	switch args[0] {
	case "bash":
		fmt.Fprintf(Stdout, `# haltfleet bash completion: source <(haltfleet completion bash)
_haltfleet() {
  local cur prev
  cur="${COMP_WORDS[COMP_CWORD]}"; prev="${COMP_WORDS[COMP_CWORD-1]}"
  case "$prev" in
    -i|--inventory|-F|--events|--become-password-file|--known-hosts) COMPREPLY=( $(compgen -f -- "$cur") ); return;;
  esac
  if [ "$COMP_CWORD" -eq 1 ]; then COMPREPLY=( $(compgen -W "%s" -- "$cur") ); return; fi
  case "${COMP_WORDS[1]}" in
    lab) COMPREPLY=( $(compgen -W "up down status cycle console" -- "$cur") );;
    completion) COMPREPLY=( $(compgen -W "bash zsh fish" -- "$cur") );;
    *) COMPREPLY=( $(compgen -W "-i --limit --json --help" -- "$cur") );;
  esac
}
complete -o default -F _haltfleet haltfleet
`, cmds)
	case "zsh":
		fmt.Fprintf(Stdout, `#compdef haltfleet
# haltfleet zsh completion: haltfleet completion zsh > "${fpath[1]}/_haltfleet"
_haltfleet() {
  if (( CURRENT == 2 )); then compadd -- %s; return; fi
  case "$words[CURRENT-1]" in
    -i|--inventory|-F|--events) _files; return;;
  esac
  case "$words[2]" in
    lab) compadd -- up down status cycle console;;
    completion) compadd -- bash zsh fish;;
    *) compadd -- -i --limit --json --help;;
  esac
}
compdef _haltfleet haltfleet
`, cmds)
	case "fish":
		fmt.Fprintf(Stdout, "# haltfleet fish completion: haltfleet completion fish | source\n")
		fmt.Fprintf(Stdout, "complete -c haltfleet -f -n '__fish_use_subcommand' -a '%s'\n", cmds)
		fmt.Fprintf(Stdout, "complete -c haltfleet -s i -l inventory -r -F\n")
		fmt.Fprintf(Stdout, "complete -c haltfleet -f -n '__fish_seen_subcommand_from lab' -a 'up down status cycle console'\n")
		fmt.Fprintf(Stdout, "complete -c haltfleet -f -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'\n")
	default:
		fmt.Fprintf(Stderr, "haltfleet: unknown shell %q (bash, zsh or fish)\n", args[0])
		return exitUsage
	}
	return exitOK
}
