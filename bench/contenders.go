package bench

import (
	"context"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/haltfleet/haltfleet/fleetlab"
)

// runEnv is what a contender works on.
type runEnv struct {
	cfg   Config
	fleet *fleetlab.Fleet
	dir   string // this size's logs and files
}

// contender is one row of the table. before runs untimed (a reset of the hosts).
type contender struct {
	name   string
	before func(ctx context.Context, e *runEnv) error
	run    func(ctx context.Context, e *runEnv) (Result, error)
}

// Contender names, in the order they run on each fleet. haltfleet runs first on the
// fresh hosts; the hosts are then reset to their boot state so Ansible's first run
// finds the same work.
const (
	FloorGo       = "floor-go"
	FloorOpenSSH  = "floor-openssh"
	HFFacts       = "hf-facts"
	HFPlan        = "hf-plan"
	HFUp          = "hf-up"
	HFUpRerun     = "hf-up-rerun"
	HFAudit       = "hf-audit"
	AnsFacts      = "ansible-facts"
	AnsUp         = "ansible-up"
	AnsUpRerun    = "ansible-up-rerun"
	floorFallback = FloorOpenSSH
)

// Names lists every contender.
func Names() []string {
	var out []string
	for _, c := range contenders() {
		out = append(out, c.name)
	}
	return out
}

func contenders() []contender {
	return []contender{
		{name: FloorGo, run: timed(func(ctx context.Context, e *runEnv) error { return floorGo(ctx, e.fleet, e.cfg.Forks) })},
		{name: FloorOpenSSH, run: timed(func(ctx context.Context, e *runEnv) error { return floorOpenSSH(ctx, e.fleet, e.cfg.Forks) })},
		{name: HFFacts, run: haltfleet(HFFacts, "facts")},
		{name: HFPlan, run: haltfleet(HFPlan, "plan")},
		{name: HFUp, run: haltfleet(HFUp, "up")},
		{name: HFUpRerun, run: haltfleet(HFUpRerun, "up")},
		{name: HFAudit, run: haltfleet(HFAudit, "audit")},
		{name: AnsFacts, run: ansible(AnsFacts, "facts.yml")},
		{name: AnsUp, before: resetHosts, run: ansible(AnsUp, "up.yml")},
		{name: AnsUpRerun, run: ansible(AnsUpRerun, "up.yml")},
	}
}

// timed wraps a contender that reports only an error.
func timed(fn func(ctx context.Context, e *runEnv) error) func(ctx context.Context, e *runEnv) (Result, error) {
	return func(ctx context.Context, e *runEnv) (Result, error) {
		start, self, children := time.Now(), selfCPU(), childrenCPU()
		err := fn(ctx, e)
		wall := time.Since(start)
		cpu := selfCPU() - self + childrenCPU() - children
		return Result{Wall: wall, CPU: cpu, Sessions: 1, SessionsMax: 1, HasSessions: true}, err
	}
}

// haltfleet runs `haltfleet sub` on the fleet with -v (to count sessions) and one
// journal per size, so the rerun resumes nothing and redoes every host.
func haltfleet(name, sub string) func(ctx context.Context, e *runEnv) (Result, error) {
	return func(ctx context.Context, e *runEnv) (Result, error) {
		argv := []string{e.cfg.Haltfleet, sub, "-i", e.fleet.Inventory, "-F", "none",
			"--known-hosts", e.fleet.KnownHosts, "--forks", strconv.Itoa(e.cfg.Forks), "-v"}
		if sub == "up" {
			argv = append(argv, "--yes", "--fresh", "--journal", filepath.Join(e.dir, "journal.ndjson"))
		}
		var env []string
		base := filepath.Join(e.dir, name)
		if e.cfg.Profile != "" {
			argv = append([]string{e.cfg.Profile, ProfiledArg}, argv[1:]...)
			env = append(env, ProfileEnv+"="+base+".pprof")
		}
		r, err := runHaltfleet(ctx, argv, env, base)
		res := Result{Wall: r.wall, CPU: r.cpu, ExitCode: r.code, RSSKiB: r.rssKiB, HasSessions: true, Note: r.note}
		res.Sessions, res.SessionsMax = perHost(e.fleet.Hosts, func(h fleetlab.Host) int { return r.sessions[h.Name] })
		if err == nil {
			err = codeErr(sub, r.code, base)
		}
		return res, err
	}
}

func cpus() int { return runtime.NumCPU() }
