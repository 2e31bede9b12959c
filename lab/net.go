package lab

import (
	"context"
	"fmt"
	"strings"
)

// Fixed addressing inside every firewall's private namespaces (they never meet).
const (
	lanFwIP   = "192.168.10.1"
	lanHostIP = "192.168.10.2"
	wanFwIP   = "203.0.113.1"
	wanHostIP = "203.0.113.2"
	mgmtFwIP  = "10.0.2.15" // qemu user-mode network, static so nothing needs DHCP
)

// wiring names one firewall's links. Root-namespace names carry the slot so they
// stay under 15 characters and unique per lab.
type wiring struct {
	slot             int
	lanNS, wanNS     string
	lanVeth, wanVeth string // root side of the control links
	lanTap, wanTap   string
}

func wiringFor(fw string, slot int) wiring {
	return wiring{
		slot:    slot,
		lanNS:   "hfl-" + fw + "-lan",
		wanNS:   "hfl-" + fw + "-wan",
		lanVeth: fmt.Sprintf("hfl%dl", slot),
		wanVeth: fmt.Sprintf("hfl%dw", slot),
		lanTap:  fmt.Sprintf("hfl%dtl", slot),
		wanTap:  fmt.Sprintf("hfl%dtw", slot),
	}
}

// Control links: 10.199.<slot>.0/30 to lan, .4/30 to wan; root side .1/.5, namespace
// side .2/.6. Only the /30s are routed, nothing else in 10.199/16 is touched.
func (w wiring) ctlAddr(side string, root bool) string {
	base := 0
	if side == "wan" {
		base = 4
	}
	host := base + 2
	if root {
		host = base + 1
	}
	return fmt.Sprintf("10.199.%d.%d", w.slot, host)
}

// setUp creates both namespaces with a bridge (carrying the host's address) and the
// control veth into each.
func (w wiring) setUp(ctx context.Context) error {
	for _, side := range []struct{ name, ns, veth, addr string }{
		{"lan", w.lanNS, w.lanVeth, lanHostIP},
		{"wan", w.wanNS, w.wanVeth, wanHostIP},
	} {
		steps := [][]string{
			{"ip", "netns", "add", side.ns},
			{"ip", "-n", side.ns, "link", "set", "lo", "up"},
			{"ip", "-n", side.ns, "link", "add", "br0", "type", "bridge", "forward_delay", "0", "stp_state", "0"},
			{"ip", "-n", side.ns, "addr", "add", side.addr + "/24", "dev", "br0"},
			{"ip", "-n", side.ns, "link", "set", "br0", "up"},
			{"ip", "link", "add", side.veth, "type", "veth", "peer", "name", "ctl0", "netns", side.ns},
			{"ip", "addr", "add", w.ctlAddr(side.name, true) + "/30", "dev", side.veth},
			{"ip", "link", "set", side.veth, "up"},
			{"ip", "-n", side.ns, "addr", "add", w.ctlAddr(side.name, false) + "/30", "dev", "ctl0"},
			{"ip", "-n", side.ns, "link", "set", "ctl0", "up"},
		}
		if side.name == "lan" {
			steps = append(steps, []string{"ip", "-n", side.ns, "route", "add", "default", "via", lanFwIP})
		}
		for _, s := range steps {
			if _, err := run(ctx, s...); err != nil {
				return fmt.Errorf("%s: network: %w", side.ns, err)
			}
		}
	}
	return nil
}

// newTaps creates the VM's two taps in the root namespace, where qemu opens them by
// name; plugTaps then moves them (qemu keeps its fds) onto the namespace bridges.
func (w wiring) newTaps(ctx context.Context) error {
	w.dropTaps(ctx)
	for _, t := range []string{w.lanTap, w.wanTap} {
		if _, err := run(ctx, "ip", "tuntap", "add", "dev", t, "mode", "tap"); err != nil {
			return fmt.Errorf("%s: tap: %w", t, err)
		}
	}
	return nil
}

func (w wiring) plugTaps(ctx context.Context) error {
	for _, p := range [][2]string{{w.lanTap, w.lanNS}, {w.wanTap, w.wanNS}} {
		for _, s := range [][]string{
			{"ip", "link", "set", p[0], "netns", p[1]},
			{"ip", "-n", p[1], "link", "set", p[0], "master", "br0", "up"},
		} {
			if _, err := run(ctx, s...); err != nil {
				return fmt.Errorf("%s: tap %s: %w", p[1], p[0], err)
			}
		}
	}
	return nil
}

// dropTaps deletes the taps wherever they are; missing ones are fine.
func (w wiring) dropTaps(ctx context.Context) {
	for _, p := range [][2]string{{w.lanTap, w.lanNS}, {w.wanTap, w.wanNS}} {
		_, _ = run(ctx, "ip", "-n", p[1], "link", "del", p[0])
		_, _ = run(ctx, "ip", "link", "del", p[0])
	}
}

// tearDown removes taps, control links and namespaces; it reports what it could not
// remove (things already gone are not errors).
func (w wiring) tearDown(ctx context.Context) error {
	w.dropTaps(ctx)
	var errs []string
	for _, l := range []string{w.lanVeth, w.wanVeth} {
		if linkExists(ctx, "", l) {
			if _, err := run(ctx, "ip", "link", "del", l); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	for _, ns := range []string{w.lanNS, w.wanNS} {
		if nsExists(ctx, ns) {
			if _, err := run(ctx, "ip", "netns", "del", ns); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("network teardown: %s", strings.Join(errs, "; "))
	}
	return nil
}

func linkExists(ctx context.Context, ns, name string) bool {
	argv := []string{"ip", "link", "show", "dev", name}
	if ns != "" {
		argv = append([]string{"ip", "-n", ns}, argv[1:]...)
	}
	_, err := run(ctx, argv...)
	return err == nil
}

// namespaces lists the network namespaces whose name starts with prefix.
func namespaces(ctx context.Context, prefix string) []string {
	out, err := run(ctx, "ip", "netns", "list")
	if err != nil {
		return nil
	}
	var ns []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			ns = append(ns, f[0])
		}
	}
	return ns
}

func nsExists(ctx context.Context, ns string) bool {
	for _, n := range namespaces(ctx, ns) {
		if n == ns {
			return true
		}
	}
	return false
}
