package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/haltfleet/haltfleet/inventory"
	"github.com/haltfleet/haltfleet/runner"
	"github.com/haltfleet/haltfleet/tasks"
)

// fleetFlags are the flags every command that reaches hosts shares.
type fleetFlags struct {
	inventory      string
	limit          string
	sshConfig      string
	knownHosts     string
	acceptNew      bool
	forks          int
	askBecomePass  bool
	becomePassFile string
	becomePassEnv  string
	connectTimeout time.Duration
	verbose        bool
}

func (ff *fleetFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&ff.inventory, "i", "", "inventory `file` (Ansible YAML; a directory loads every file in it)")
	fs.StringVar(&ff.inventory, "inventory", "", "same as -i")
	fs.StringVar(&ff.limit, "limit", "", "Ansible host `pattern`s: names, groups, globs, ~regex, !exclude, &intersect, comma lists, @file")
	fs.StringVar(&ff.sshConfig, "F", "", "ssh_config `file` (default ~/.ssh/config; \"none\" reads none)")
	fs.StringVar(&ff.knownHosts, "known-hosts", "", "known_hosts `file` instead of ~/.ssh/known_hosts")
	fs.BoolVar(&ff.acceptNew, "accept-new", false, "add unknown host keys to known_hosts (a changed key is still refused)")
	fs.IntVar(&ff.forks, "forks", 50, "hosts worked on at once")
	fs.BoolVar(&ff.askBecomePass, "K", false, "ask for the sudo password once (also --ask-become-pass)")
	fs.BoolVar(&ff.askBecomePass, "ask-become-pass", false, "same as -K")
	fs.StringVar(&ff.becomePassFile, "become-password-file", "", "read the sudo password from `file` (first line)")
	fs.StringVar(&ff.becomePassEnv, "become-password-env", "", "read the sudo password from environment variable `name`")
	fs.DurationVar(&ff.connectTimeout, "timeout", runner.DefaultConnectTimeout, "TCP connect plus SSH handshake bound")
	fs.BoolVar(&ff.verbose, "v", false, "print every command run on a host (never its input)")
}

// fleet is an inventory narrowed by --limit, with the connection machinery for it.
type fleet struct {
	ff    *fleetFlags
	inv   *inventory.Inventory
	hosts []*inventory.Host
	opts  runner.Options
	pool  *runner.Pool
	// staleRun reports whether a host lock held by run id may be taken over: up sets it
	// to "a run of this inventory in the journal", dead because up holds the journal.
	staleRun func(id string) bool
	// canons shares the canonical form of each desired ruleset across the run's hosts.
	canons *tasks.Canons
	// probeSources are hosts other hosts' probes run on: their connections stay open.
	probeSources map[string]bool
}

func (ff *fleetFlags) open() (*fleet, error) {
	if ff.inventory == "" {
		return nil, errors.New("no inventory: pass -i FILE")
	}
	inv, err := inventory.Load(ff.inventory)
	if err != nil {
		return nil, err
	}
	warnSkipped(inv)
	hosts := inv.Hosts
	if ff.limit != "" {
		if hosts, err = inv.Limit(ff.limit); err != nil {
			return nil, err
		}
	}
	opts := runner.Options{AcceptNew: ff.acceptNew, ConnectTimeout: ff.connectTimeout,
		Passphrase:     askOnce(func(key string) string { return "Passphrase for " + key + ": " }),
		BecomePassword: ff.becomePassword()}
	if ff.sshConfig != "none" {
		if opts.SSHConfig, err = runner.LoadSSHConfig(ff.sshConfig); err != nil {
			return nil, err
		}
	}
	if ff.knownHosts != "" {
		opts.KnownHostsFiles = []string{ff.knownHosts}
	}
	if ff.verbose {
		var mu sync.Mutex
		opts.Log = func(host, command string) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(Stderr, "%s: $ %s\n", host, oneLine(command))
		}
	}
	sources := map[string]bool{}
	for _, h := range inv.Hosts {
		for _, p := range h.Settings.Probes {
			sources[p.From] = true
		}
	}
	return &fleet{ff: ff, inv: inv, hosts: hosts, opts: opts, pool: runner.NewPool(opts),
		canons: tasks.NewCanons(), probeSources: sources}, nil
}

// release closes h's connection once the run is done with the host, so memory follows
// --forks rather than the fleet's size. Hosts that probes run on keep theirs.
func (f *fleet) release(h *inventory.Host, r *runner.SSH) {
	if r != nil && !f.probeSources[h.Name] {
		_ = f.pool.Release(r)
	}
}

func (f *fleet) Close() { f.pool.Close() }

// warnSkipped says which files of an inventory directory were not loaded, as
// ansible-inventory warns about them.
func warnSkipped(inv *inventory.Inventory) {
	for _, p := range inv.Skipped {
		fmt.Fprintf(Stderr, "haltfleet: warning: %s: skipped: neither YAML nor INI inventory\n", oneLine(p))
	}
}

// target maps a host's Ansible connection variables to a runner target.
func target(h *inventory.Host) (runner.Target, error) {
	return runner.TargetFromVars(h.Name, h.Vars)
}

// connect returns the run's one connection to h.
func (f *fleet) connect(ctx context.Context, h *inventory.Host) (*runner.SSH, error) {
	t, err := target(h)
	if err != nil {
		return nil, err
	}
	return f.pool.Get(ctx, t)
}

// silent reports whether a connect error means the host's SSH does not answer at all
// (what a halted host looks like), as opposed to answering and refusing us.
func silent(err error) bool {
	return errors.Is(err, runner.ErrUnreachable) || errors.Is(err, runner.ErrTimeout)
}

// reconnect opens a brand-new connection to h (not the pooled one), so the dead-man
// confirmation proves the new ruleset still admits new connections.
func (f *fleet) reconnect(h *inventory.Host) func(ctx context.Context) (runner.Runner, error) {
	return func(ctx context.Context) (runner.Runner, error) {
		t, err := target(h)
		if err != nil {
			return nil, err
		}
		p := runner.NewPool(f.opts)
		r, err := p.Get(ctx, t)
		if err != nil {
			p.Close()
			return nil, err
		}
		return poolRunner{r, p}, nil
	}
}

// poolRunner closes its private pool with it.
type poolRunner struct {
	*runner.SSH
	p *runner.Pool
}

func (r poolRunner) Close() error { return r.p.Close() }

// dial returns a function that succeeds while h's sshd still answers. Direct hosts are
// checked by TCP + banner; hosts behind jump hosts by a full fresh connection.
func (f *fleet) dial(h *inventory.Host, resolved runner.Target) func(ctx context.Context) error {
	if resolved.ProxyJump == "" {
		port := resolved.Port
		if port == 0 {
			port = 22
		}
		return tasks.DialSSH(net.JoinHostPort(resolved.Host, strconv.Itoa(port)))
	}
	re := f.reconnect(h)
	return func(ctx context.Context) error {
		r, err := re(ctx)
		if err != nil {
			return err
		}
		return r.Close()
	}
}

// probeFrom gives the runner a probe runs on: the controller itself or an inventory host.
func (f *fleet) probeFrom(ctx context.Context, from string) (runner.Runner, error) {
	if from == inventory.Controller {
		return runner.NewLocal(runner.LocalOptions{Name: "controller", Log: f.opts.Log}), nil
	}
	h := f.inv.Host(from)
	if h == nil {
		return nil, fmt.Errorf("probe host %q is not in the inventory", from)
	}
	return f.connect(ctx, h)
}

// becomePassword returns the sudo password source the flags name, asked at most once.
func (ff *fleetFlags) becomePassword() func() ([]byte, error) {
	var (
		once sync.Once
		pw   []byte
		err  error
	)
	get := func() ([]byte, error) {
		switch {
		case ff.becomePassEnv != "":
			v, ok := os.LookupEnv(ff.becomePassEnv)
			if !ok {
				return nil, fmt.Errorf("environment variable %s is not set", ff.becomePassEnv)
			}
			return []byte(v), nil
		case ff.becomePassFile != "":
			b, err := os.ReadFile(ff.becomePassFile)
			if err != nil {
				return nil, err
			}
			line, _, _ := strings.Cut(string(b), "\n")
			return []byte(strings.TrimSuffix(line, "\r")), nil
		case ff.askBecomePass:
			return prompt("BECOME password: ")
		}
		return nil, runner.ErrSudoPassword
	}
	return func() ([]byte, error) {
		once.Do(func() { pw, err = get() })
		return pw, err
	}
}

// askOnce prompts on the terminal once per key file.
func askOnce(label func(string) string) func(string) ([]byte, error) {
	var mu sync.Mutex
	seen := map[string][]byte{}
	return func(key string) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		if b, ok := seen[key]; ok {
			return bytes.Clone(b), nil // the runner clears what it is given
		}
		b, err := prompt(label(key))
		if err != nil {
			return nil, err
		}
		seen[key] = bytes.Clone(b)
		return b, nil
	}
}

var promptMu sync.Mutex

// prompt reads a secret from the controlling terminal without echo.
func prompt(label string) ([]byte, error) {
	promptMu.Lock()
	defer promptMu.Unlock()
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("%s no terminal to ask on (use --become-password-file or --become-password-env)", strings.TrimSuffix(label, ": "))
	}
	defer tty.Close()
	fmt.Fprint(tty, label)
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	return b, err
}
