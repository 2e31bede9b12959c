// Package fleetlab runs hundreds of real Debian hosts on one machine: each host is a
// network namespace plus an overlay of one shared rootfs, with its own mount, PID, UTS
// and IPC namespaces, sysvinit as PID 1 and OpenSSH started by the init scripts.
//
// Network: every fleet has a "bridge namespace" <prefix>-net holding bridge br0; each
// host's eth0 is a veth into it, and the controller (root namespace) gets one veth
// <prefix>-ctl into it carrying the fleet's first address. Nothing is bridged to, or
// routed through, any real interface: the root namespace only gains that one link and
// the connected route of the fleet's /20 inside 10.201.0.0/16.
//
// Each host is a stock Debian 12 sysvinit boot (container=lxc in init's environment):
// a shutdown inside a host runs the real rc0 scripts, and a halt ends only that host's
// PID namespace; its network namespace stays pinned under /run/netns with whatever
// ruleset and addresses were left, which is how a halted firewall looks from outside.
// The hosts outlive the process that started them; Down (same StateDir and Prefix)
// removes them, also after that process was killed. Stop a running Up before Down.
// Every host's console output lands in hosts/hNNN/console.log (written in place, as
// init does not append).
package fleetlab

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// MaxHosts is bounded by the bridge (1024 ports) and the three-digit host names.
const MaxHosts = 999

// Config says how many hosts to run and where their files live. Zero values get defaults.
type Config struct {
	N        int    // hosts h001..hNNN
	StateDir string // per-host upper dirs, keys, inventory; default /var/lib/haltfleet-fleet
	CacheDir string // shared rootfs and .debs; default /var/cache/haltfleet-lab
	Parallel int    // hosts started at once; default 16
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
	// Prefix names the namespaces (<prefix>001…, <prefix>-net) and marks every
	// process and link of the fleet; [a-z][a-z0-9]{0,7}, default "hff".
	Prefix string
	// Slot picks the fleet's /20 inside 10.201.0.0/16 (0..15), so two fleets (a test
	// and a measurement) can run side by side; slot s uses 10.201.16s.0/20.
	Slot int
}

var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,7}$`)

func (c Config) withDefaults() (Config, error) {
	if c.StateDir == "" {
		c.StateDir = "/var/lib/haltfleet-fleet"
	}
	if c.CacheDir == "" {
		c.CacheDir = "/var/cache/haltfleet-lab"
	}
	if c.Parallel <= 0 {
		c.Parallel = 16
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	if c.Prefix == "" {
		c.Prefix = "hff"
	}
	if !prefixRE.MatchString(c.Prefix) {
		return c, fmt.Errorf("fleetlab: prefix %q: want [a-z][a-z0-9]{0,7}", c.Prefix)
	}
	for _, d := range []*string{&c.StateDir, &c.CacheDir} {
		// Both end up in overlay mount options, where these separate fields.
		if strings.ContainsAny(*d, ",:\\") {
			return c, fmt.Errorf("fleetlab: directory %q: no ',', ':' or '\\' allowed", *d)
		}
		abs, err := filepath.Abs(*d)
		if err != nil {
			return c, fmt.Errorf("fleetlab: directory %q: %w", *d, err)
		}
		*d = abs
	}
	if c.N < 0 || c.N > MaxHosts {
		return c, fmt.Errorf("fleetlab: %d hosts: want 0..%d", c.N, MaxHosts)
	}
	if c.Slot < 0 || c.Slot > 15 {
		return c, fmt.Errorf("fleetlab: slot %d: want 0..15", c.Slot)
	}
	return c, nil
}

// Build makes (or finds in the cache) the shared rootfs and returns its directory.
func Build(ctx context.Context, cfg Config) (string, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return "", err
	}
	return ensureImage(ctx, cfg)
}
