package tasks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/haltfleet/haltfleet/runner"
)

// Sudo states the facts round trip can tell (Facts.Sudo). "password" is decided later,
// when a become password is actually tried.
const (
	SudoRoot          = "root"
	SudoNopasswd      = "nopasswd"
	SudoNeedsPassword = "needs-password"
	SudoNone          = "none"
)

// Gather learns a host's Facts in one round trip: one Exec of one POSIX sh script, run
// without sudo, whose sectioned output is parsed here. What the script cannot read
// unprivileged (PID 1's exe and environment) is inferred from what it can.
func Gather(ctx context.Context, r runner.Runner) (Facts, error) {
	host := r.Name()
	nonce, err := newNonce()
	if err != nil {
		return Facts{}, fmt.Errorf("%s: facts: %w", host, err)
	}
	// sh -c pins a POSIX shell whatever the login shell is (fish, csh, ...).
	res, err := r.Exec(ctx, runner.Cmd{Command: "sh -c " + runner.Quote(scriptFor(nonce))})
	if err != nil {
		return Facts{}, fmt.Errorf("%s: facts: %w", host, err)
	}
	d, err := parseDump(res.Stdout)
	if err != nil {
		return Facts{}, fmt.Errorf("%s: facts: %w", host, err)
	}
	if d.nonce != nonce {
		return Facts{}, fmt.Errorf("%s: facts: output is not from this run's script", host)
	}
	f := factsFrom(d)
	f.Host = clean(host)
	return f, nil
}

func newNonce() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// parseFacts turns one host's script output into Facts (without Host).
func parseFacts(out []byte) (Facts, error) {
	d, err := parseDump(out)
	if err != nil {
		return Facts{}, err
	}
	return factsFrom(d), nil
}

// factsFrom runs every resolver over the dump. It never fails: what cannot be told is
// "unknown" or empty plus a warning, and the caller's policy decides.
func factsFrom(d dump) Facts {
	var f Facts
	f.Distro = resolveDistro(d)
	u := d.lines("uname")
	if len(u) > 0 {
		f.Kernel = u[0]
	}
	if len(u) > 1 {
		f.Machine = u[1]
		f.Arch = normaliseArch(f.Machine)
	}
	f.Init, f.InitBase, f.PID1 = resolveInit(d)
	f.Container = resolveContainer(d)
	f.Firewall = resolveFirewall(d)
	f.Network = resolveNetwork(d)
	addrs, known := resolveAddrs(d)
	f.FiniteAddrs = addrs
	f.RunNoexec = runNoexec(d)
	f.Sudo = resolveSudo(d)

	warn := func(format string, args ...any) { f.Warnings = append(f.Warnings, fmt.Sprintf(format, args...)) }
	if !d.complete {
		warn("facts output ended early; some facts may be missing")
	}
	if f.Kernel == "" {
		warn("uname gave no kernel release")
	}
	if f.Arch == "" && f.Machine != "" {
		warn("unknown machine %q: no idle init for it", f.Machine)
	}
	if f.Init == InitUnknown {
		warn("init system not recognised (PID 1 is %q)", f.PID1)
	}
	if !known {
		warn("address lifetimes unknown: neither `ip -j addr` nor `ip addr` answered")
	}
	if f.Sudo == SudoNeedsPassword {
		warn("sudo needs a password")
	}
	f.sanitise()
	return f
}

// runNoexec reads the /proc/mounts lines for / and /run (the later, more specific line
// wins, as findmnt -T /run would say). "run-mount", findmnt's options, is what the
// first script (testdata/facts/script-v1.sh) printed; it is still read so that script's
// output can be compared with the current one's.
func runNoexec(d dump) bool {
	if opts, ok := d.sections["run-mount"]; ok {
		return hasOption(strings.TrimSpace(opts), "noexec")
	}
	noexec := false
	for _, l := range d.lines("proc-mounts") {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		if f[1] == "/run" || (f[1] == "/" && !noexecSetByRun(d)) {
			noexec = hasOption(f[3], "noexec")
		}
	}
	return noexec
}

func noexecSetByRun(d dump) bool {
	for _, l := range d.lines("proc-mounts") {
		if f := strings.Fields(l); len(f) >= 4 && f[1] == "/run" {
			return true
		}
	}
	return false
}

func hasOption(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// resolveSudo: uid 0 needs no sudo; otherwise `sudo -n true` tells nopasswd from the
// rest, and sudo's own message tells "asks for a password" from "not allowed".
func resolveSudo(d dump) string {
	if d.section("uid") == "0" {
		return SudoRoot
	}
	s := d.section("sudo")
	switch {
	case s == "ok":
		return SudoNopasswd
	case strings.HasPrefix(s, "fail"):
		m := strings.ToLower(s)
		if strings.Contains(m, "not in the sudoers") || strings.Contains(m, "not allowed") || strings.Contains(m, "may not run sudo") {
			return SudoNone
		}
		return SudoNeedsPassword
	}
	return SudoNone // sudo is not installed
}
