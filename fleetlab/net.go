package fleetlab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"
)

// Addressing: slot s owns 10.201.16s.0/20; .1 of it is the controller, host i is
// the (1+i)-th address after the base.
const prefixLen = 20

func baseAddr(slot int) netip.Addr { return netip.AddrFrom4([4]byte{10, 201, byte(16 * slot), 0}) }

func nth(a netip.Addr, n int) netip.Addr {
	for range n {
		a = a.Next()
	}
	return a
}

func ctlAddr(slot int) netip.Addr        { return nth(baseAddr(slot), 1) }
func hostAddr(slot, i int) netip.Addr    { return nth(baseAddr(slot), 1+i) }
func hostName(i int) string              { return fmt.Sprintf("h%03d", i) }
func hostNS(prefix string, i int) string { return fmt.Sprintf("%s%03d", prefix, i) }
func bridgeNS(prefix string) string      { return prefix + "-net" }
func ctlLink(prefix string) string       { return prefix + "-ctl" }

// ourNS matches the namespaces a fleet with this prefix creates, and nothing a longer
// prefix would (hff001 but not hfft001).
func ourNS(prefix string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `([0-9]{3}|-net)$`)
}

// setUpBridge creates the bridge namespace and the controller's veth into it.
func setUpBridge(ctx context.Context, prefix string, slot int) error {
	ns, ctl := bridgeNS(prefix), ctlLink(prefix)
	steps := [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		{"ip", "-n", ns, "link", "add", "br0", "type", "bridge", "forward_delay", "0", "stp_state", "0"},
		{"ip", "-n", ns, "link", "set", "br0", "up"},
		{"ip", "link", "add", ctl, "type", "veth", "peer", "name", "ctl0", "netns", ns},
		{"ip", "-n", ns, "link", "set", "ctl0", "master", "br0", "up"},
	}
	for _, s := range steps {
		if _, err := run(ctx, s...); err != nil {
			return fmt.Errorf("%s: network: %w", ns, err)
		}
	}
	// No IPv6 link-local chatter from the root namespace's side.
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+ctl+"/disable_ipv6", []byte("1\n"), 0o644)
	for _, s := range [][]string{
		{"ip", "addr", "add", fmt.Sprintf("%s/%d", ctlAddr(slot), prefixLen), "dev", ctl},
		{"ip", "link", "set", ctl, "up"},
	} {
		if _, err := run(ctx, s...); err != nil {
			return fmt.Errorf("%s: network: %w", ctl, err)
		}
	}
	return nil
}

// plugHost creates the host's network namespace and its eth0, a veth whose other end
// (named after the host) sits on the bridge. The address is ifupdown's job inside.
func plugHost(ctx context.Context, prefix string, h *Host) error {
	br := bridgeNS(prefix)
	for _, s := range [][]string{
		{"ip", "netns", "add", h.NS},
		{"ip", "-n", br, "link", "add", h.Name, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
		{"ip", "-n", br, "link", "set", h.Name, "master", "br0", "up"},
	} {
		if _, err := run(ctx, s...); err != nil {
			return fmt.Errorf("%s: network: %w", h.Name, err)
		}
	}
	return nil
}

// namespaces lists the network namespaces whose name matches re.
func namespaces(ctx context.Context, re *regexp.Regexp) []string {
	out, err := run(ctx, "ip", "netns", "list")
	if err != nil {
		return nil
	}
	var ns []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && re.MatchString(f[0]) {
			ns = append(ns, f[0])
		}
	}
	return ns
}

func linkExists(ctx context.Context, name string) bool {
	_, err := run(ctx, "ip", "link", "show", "dev", name)
	return err == nil
}
