package tasks

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Network stacks haltfleet tells apart.
const (
	NetIfupdown       = "ifupdown"
	NetSystemdNetwork = "systemd-networkd"
	NetNetworkManager = "NetworkManager"
	NetNetplan        = "netplan"
)

// forever is how the kernel spells an infinite address lifetime (0xffffffff).
const forever = 4294967295

// networkResolver reports whether one network stack is in use.
type networkResolver struct {
	name string
	in   func(d dump) bool
}

var networkResolvers = []networkResolver{
	{NetIfupdown, func(d dump) bool {
		s := d.service("networking")
		return ifupdownStanzas(d) && (s.enabled == "enabled" || s.active == "active" || d.which("ifup") != "")
	}},
	{NetSystemdNetwork, func(d dump) bool {
		return d.service("systemd-networkd").active == "active" || d.running("systemd-networkd")
	}},
	{NetNetworkManager, func(d dump) bool {
		return d.service("NetworkManager").active == "active" || d.running("NetworkManager")
	}},
	{NetNetplan, func(d dump) bool {
		for _, l := range d.lines("exists") {
			if strings.HasPrefix(l, "/etc/netplan/") {
				return true
			}
		}
		return false
	}},
}

func resolveNetwork(d dump) []string {
	var out []string
	for _, r := range networkResolvers {
		if r.in(d) {
			out = append(out, r.name)
		}
	}
	return out
}

// ifupdownStanzas reports whether /etc/network/interfaces (or a file in interfaces.d)
// configures anything but loopback.
func ifupdownStanzas(d dump) bool {
	for name, body := range d.sections {
		path, ok := strings.CutPrefix(name, "file ")
		if !ok || (path != "/etc/network/interfaces" && !strings.HasPrefix(path, "/etc/network/interfaces.d/")) {
			continue
		}
		for _, l := range strings.Split(body, "\n") {
			f := strings.Fields(l)
			if len(f) >= 2 && f[0] == "iface" && f[1] != "lo" {
				return true
			}
		}
	}
	return false
}

// ipAddr is the part of `ip -j addr` haltfleet reads.
type ipAddr struct {
	IfName   string `json:"ifname"`
	AddrInfo []struct {
		Local     string `json:"local"`
		Prefixlen int    `json:"prefixlen"`
		ValidLft  *int64 `json:"valid_life_time"`
	} `json:"addr_info"`
}

// resolveAddrs returns the addresses with a finite valid lifetime, and false when
// neither `ip -j addr` nor `ip addr` gave anything to read.
func resolveAddrs(d dump) ([]Addr, bool) {
	if j := d.section("ip-json"); j != "" {
		var links []ipAddr
		if err := json.Unmarshal([]byte(j), &links); err == nil {
			var out []Addr
			for _, l := range links {
				for _, a := range l.AddrInfo {
					if a.ValidLft != nil && *a.ValidLft != forever && a.Local != "" {
						out = append(out, Addr{Iface: l.IfName, CIDR: fmt.Sprintf("%s/%d", a.Local, a.Prefixlen), ValidLft: *a.ValidLft})
					}
				}
			}
			return out, true
		}
	}
	if t := d.sections["ip-text"]; strings.TrimSpace(t) != "" {
		return parseIPText(t), true
	}
	return nil, false
}

// parseIPText reads `ip addr` text: "2: eth0: <...>" starts a link, "inet A/N ..." an
// address, and the following "valid_lft 86313sec preferred_lft ..." its lifetime.
func parseIPText(t string) []Addr {
	var (
		out         []Addr
		iface, cidr string
	)
	for _, l := range strings.Split(t, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		switch {
		case !strings.HasPrefix(l, " ") && len(f) >= 2 && strings.HasSuffix(f[0], ":"):
			iface, _, _ = strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			cidr = ""
		case (f[0] == "inet" || f[0] == "inet6") && len(f) >= 2:
			cidr = f[1]
		case f[0] == "valid_lft" && len(f) >= 2 && cidr != "":
			if v, ok := strings.CutSuffix(f[1], "sec"); ok {
				if n, err := strconv.ParseInt(v, 10, 64); err == nil && n != forever {
					out = append(out, Addr{Iface: iface, CIDR: cidr, ValidLft: n})
				}
			}
			cidr = ""
		}
	}
	return out
}
