// Package bench measures haltfleet on a fleetlab fleet against the SSH floor (x/crypto/ssh
// and OpenSSH running `true` on every host) and against Ansible doing the same job, at
// the same concurrency, and reports wall time, ratios, haltfleet's peak RSS and the SSH
// connections and sessions each contender opens per host. cmd/haltfleet-bench runs it.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/haltfleet/haltfleet/fleetlab"
)

// Config says what to measure and where the files go.
type Config struct {
	Sizes     []int           // fleet sizes, one fleet each
	Forks     int             // concurrency of every contender
	Only      map[string]bool // contender names to run; empty runs all
	Haltfleet string          // the haltfleet binary
	// Profile, when set, is a binary that runs haltfleet's CLI under a CPU profile
	// (cmd/haltfleet-bench itself); profiles land in WorkDir.
	Profile  string
	WorkDir  string // logs, Ansible files, results.json
	CacheDir string // the bench image (fleetlab's plus python3)
	StateDir string // fleet state, one subdirectory per size
	Prefix   string // fleetlab namespace prefix
	Slot     int    // fleetlab address slot
	Parallel int    // hosts booted at once
	// Keep leaves the last fleet up (for profiling by hand); the next run sweeps it.
	Keep bool
	Out  io.Writer
	Logf func(format string, args ...any)
}

// Result is one contender's run on one fleet.
type Result struct {
	Name     string        `json:"name"`
	Wall     time.Duration `json:"wall_ns"`
	Err      string        `json:"error,omitempty"`
	ExitCode int           `json:"exit_code"`
	RSSKiB   int64         `json:"peak_rss_kib,omitempty"` // haltfleet only
	// CPU is the controller's user+system time: the contender's process tree, or for
	// the Go floor the bench process itself.
	CPU time.Duration `json:"controller_cpu_ns"`
	// Conns is TCP connections per host (SYNs counted on the controller): mean and max.
	Conns    float64 `json:"conns_per_host"`
	ConnsMax int     `json:"conns_max"`
	// Sessions is SSH sessions per host where the contender reveals them (see docs/bench.md).
	Sessions    float64 `json:"sessions_per_host,omitempty"`
	SessionsMax int     `json:"sessions_max,omitempty"`
	HasSessions bool    `json:"has_sessions"`
	Note        string  `json:"note,omitempty"` // the contender's own recap
}

// SizeRun is every result on one fleet.
type SizeRun struct {
	N       int           `json:"n"`
	Hosts   int           `json:"hosts_up"`
	Forks   int           `json:"forks"`
	FleetUp time.Duration `json:"fleet_up_ns"`
	LoadAvg string        `json:"loadavg_before"`
	Results []Result      `json:"results"`
	Err     string        `json:"error,omitempty"`
}

// Report is a whole benchmark run.
type Report struct {
	Started time.Time `json:"started"`
	CPUs    int       `json:"cpus"`
	Kernel  string    `json:"kernel"`
	Forks   int       `json:"forks"`
	Sizes   []SizeRun `json:"sizes"`
}

// Run measures every size in turn, printing each table as it completes. Each fleet is
// taken down before the next starts, and on any return path (error, cancellation, panic).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	rep := &Report{Started: time.Now(), CPUs: cpus(), Kernel: kernel(), Forks: cfg.Forks}
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return rep, err
	}
	// Two runs on one prefix would sweep each other's fleets and counters.
	unlock, err := lock(filepath.Join(cfg.WorkDir, "bench.lock"))
	if err != nil {
		return rep, err
	}
	defer unlock()
	if err := PrepareImage(ctx, cfg.CacheDir, cfg.Logf); err != nil {
		return rep, err
	}
	var errs []error
	for i, n := range cfg.Sizes {
		sr, err := runSize(ctx, cfg, n, i == len(cfg.Sizes)-1)
		rep.Sizes = append(rep.Sizes, sr)
		if cfg.Out != nil {
			PrintTable(cfg.Out, sr)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("N=%d: %w", n, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return rep, errors.Join(errs...)
}

// FleetConfig is the fleetlab configuration of the size-n fleet.
func (cfg Config) FleetConfig(n int) fleetlab.Config {
	return fleetlab.Config{N: n, StateDir: filepath.Join(cfg.StateDir, fmt.Sprint("n", n)),
		CacheDir: cfg.CacheDir, Prefix: cfg.Prefix, Slot: cfg.Slot, Parallel: cfg.Parallel, Logf: cfg.Logf}
}

func runSize(ctx context.Context, cfg Config, n int, last bool) (sr SizeRun, err error) {
	sr = SizeRun{N: n, Forks: cfg.Forks, LoadAvg: loadAvg()}
	fcfg := cfg.FleetConfig(n)
	// A fleet of ours left by a killed run would make Up refuse: sweep it first.
	if err := fleetlab.Down(ctx, fcfg); err != nil {
		return sr, err
	}
	defer func() {
		if last && cfg.Keep && ctx.Err() == nil {
			cfg.Logf("N=%d: fleet kept: inventory %s", n, filepath.Join(fcfg.StateDir, "hosts.yml"))
			return
		}
		dctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		if derr := fleetlab.Down(dctx, fcfg); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	cfg.Logf("N=%d: starting the fleet", n)
	f, err := fleetlab.Up(ctx, fcfg)
	if f != nil {
		sr.Hosts, sr.FleetUp = len(f.Hosts), f.Took
	}
	if err != nil {
		sr.Err = err.Error()
		return sr, err
	}
	if err := StartConnCounter(ctx, cfg.Prefix, fleetCIDR(cfg.Slot)); err != nil {
		return sr, err
	}
	defer StopConnCounter(context.Background(), cfg.Prefix)
	dir := filepath.Join(cfg.WorkDir, fmt.Sprint("n", n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return sr, err
	}
	env := &runEnv{cfg: cfg, fleet: f, dir: dir}
	for _, c := range contenders() {
		if len(cfg.Only) > 0 && !cfg.Only[c.name] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		if c.before != nil {
			if err := c.before(ctx, env); err != nil {
				return sr, fmt.Errorf("%s: prepare: %w", c.name, err)
			}
		}
		if err := ResetConns(ctx, cfg.Prefix); err != nil {
			return sr, err
		}
		cfg.Logf("N=%d: %s", n, c.name)
		res, rerr := c.run(ctx, env)
		res.Name = c.name
		if rerr != nil {
			res.Err = rerr.Error()
			cfg.Logf("N=%d: %s: %v", n, c.name, rerr)
		}
		conns, err := ReadConns(ctx, cfg.Prefix)
		if err != nil {
			return sr, err
		}
		res.Conns, res.ConnsMax = perHost(f.Hosts, func(h fleetlab.Host) int { return conns[h.Addr] })
		sr.Results = append(sr.Results, res)
		cfg.Logf("N=%d: %s: %s", n, c.name, res.Wall.Round(time.Millisecond))
	}
	return sr, ctx.Err()
}

// fleetCIDR is fleetlab's address block for slot s (10.201.16s.0/20).
func fleetCIDR(slot int) string { return fmt.Sprintf("10.201.%d.0/20", 16*slot) }

// perHost returns the mean and max of count over hosts.
func perHost(hosts []fleetlab.Host, count func(fleetlab.Host) int) (float64, int) {
	if len(hosts) == 0 {
		return 0, 0
	}
	sum, mx := 0, 0
	for _, h := range hosts {
		c := count(h)
		sum += c
		mx = max(mx, c)
	}
	return float64(sum) / float64(len(hosts)), mx
}

// lock takes an exclusive lock on path or fails at once.
func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: another haltfleet-bench holds it: %w", path, err)
	}
	return func() { f.Close() }, nil
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}
