// Package cli is haltfleet's command line: it parses flags, wires inventory, runner and
// tasks together, decides concurrency and renders results. Only main exits.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Stdout and Stderr are variables so tests can swap them.
var (
	Stdout io.Writer = os.Stdout
	Stderr io.Writer = os.Stderr
	Stdin  io.Reader = os.Stdin
)

// Version is set at build time with -ldflags "-X .../cli.Version=v1.2.3".
var Version = "dev"

// Exit codes shared by every subcommand; plan and audit add 2 for "changes/drift".
const (
	exitOK    = 0
	exitError = 1
	exitDiff  = 2
	exitUsage = 64
)

// command is one subcommand.
type command struct {
	name, usage, summary string
	run                  func(ctx context.Context, args []string) int
}

func commands() []command {
	return []command{
		{"up", "up -i INVENTORY [flags]", "apply rulesets, arm, verify, halt and probe each host", runUp},
		{"plan", "plan -i INVENTORY [flags]", "show what up would change on each host, changing nothing (exit 2: changes)", runPlan},
		{"audit", "audit -i INVENTORY [--format text|json|junit] [flags]", "compare live and halted hosts with the inventory, changing nothing (exit 2: drift)", runAudit},
		{"facts", "facts -i INVENTORY [--limit PATTERN] [--json]", "gather facts (distro, init, firewall, network) in one round trip per host", runFacts},
		{"inventory", "inventory -i INVENTORY --list [--limit PATTERN]", "print the inventory as ansible-inventory --list does", runInventory},
		{"lab", "lab up|down|status|cycle FW|console FW [flags]", "the built-in VM lab: Debian 12 firewalls under qemu between lan and wan namespaces", runLab},
		{"version", "version", "print the version", runVersion},
		{"completion", "completion bash|zsh|fish", "print a shell completion script", runCompletion},
	}
}

// Run runs haltfleet with args (without the program name) and returns the exit code.
// The first SIGINT/SIGTERM asks for a graceful stop (up finishes the steps in flight but
// starts no more hosts and no halt; read-only commands stop at once), the second cancels
// everything.
func Run(args []string) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; !ok {
			return
		}
		fmt.Fprintln(Stderr, "\nhaltfleet: interrupted: finishing the steps in flight, starting no more hosts and no more halts (interrupt again to abort them)")
		close(stop)
		if _, ok := <-sigs; ok {
			fmt.Fprintln(Stderr, "\nhaltfleet: aborting the hosts in flight")
			cancel()
		}
	}()
	return RunContext(withStop(ctx, stop), args)
}

type stopKey struct{}

// withStop attaches the graceful-stop channel to ctx.
func withStop(ctx context.Context, stop <-chan struct{}) context.Context {
	return context.WithValue(ctx, stopKey{}, stop)
}

// stopChan is closed on a graceful stop; nil (never ready) when there is none.
func stopChan(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(stopKey{}).(<-chan struct{})
	return ch
}

// cancelOnStop turns a graceful stop into cancellation, for commands that change nothing.
func cancelOnStop(ctx context.Context) context.Context {
	ch := stopChan(ctx)
	if ch == nil {
		return ctx
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-ch:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx
}

// RunContext is Run with a caller-owned context (tests).
func RunContext(ctx context.Context, args []string) int {
	if len(args) == 0 {
		usage(Stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		if len(args) > 1 {
			return RunContext(ctx, []string{args[1], "--help"})
		}
		usage(Stdout)
		return exitOK
	case "--version", "-version":
		return runVersion(ctx, nil)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			if c.name != "up" {
				ctx = cancelOnStop(ctx)
			}
			return c.run(ctx, args[1:])
		}
	}
	fmt.Fprintf(Stderr, "haltfleet: unknown command %q\n\n", args[0])
	usage(Stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `haltfleet turns Linux machines into halted firewalls: shut down to run level 0 with only an
idle PID 1 left, no disk mounted, no login, while the kernel keeps filtering, forwarding and NATing.

Usage:
  haltfleet <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'haltfleet <command> --help' for the flags of a command.
Exit codes: 0 ok, 1 error, 2 changes (plan) or drift (audit), 64 usage.
`)
}

// newFlagSet makes a FlagSet whose --help prints the command's usage and flags.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(Stderr)
	for _, c := range commands() {
		if c.name == name {
			fs.Usage = func() {
				fmt.Fprintf(Stderr, "Usage: haltfleet %s\n\n%s\n\nFlags:\n", c.usage, c.summary)
				fs.PrintDefaults()
			}
		}
	}
	return fs
}

// parse parses flags; it returns (code, false) when the command must stop (help or error).
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(interleave(fs, args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	return 0, true
}

// interleave moves positional arguments after the flags, so `lab up --fw systemd` and
// `lab --fw systemd up` both work as users expect from other CLIs.
func interleave(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil {
			if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
				continue
			}
			if i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		}
	}
	return append(flags, pos...)
}

func runVersion(ctx context.Context, args []string) int {
	fmt.Fprintf(Stdout, "haltfleet %s\n", Version)
	return exitOK
}

// commandNames is used by completion.
func commandNames() []string {
	var n []string
	for _, c := range commands() {
		n = append(n, c.name)
	}
	sort.Strings(n)
	return n
}

// fail prints an error the way every command does and returns exitError.
func fail(err error) int {
	fmt.Fprintf(Stderr, "haltfleet: %v\n", err)
	return exitError
}
