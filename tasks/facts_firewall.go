package tasks

import "strings"

// Firewall backends, in the order the primary one is chosen.
const (
	BackendFirewalld      = "firewalld"
	BackendUFW            = "ufw"
	BackendIptablesLegacy = "iptables-legacy"
	BackendNftables       = "nftables"
	BackendIptablesNft    = "iptables-nft"
	BackendNone           = "none"
)

// backendResolver says whether its backend is the primary one, given what was found.
// Order matters: a front end (firewalld, ufw) owns the ruleset when active; live legacy
// tables mean the kernel filters through x_tables whatever nft is installed.
type backendResolver struct {
	name string
	is   func(fw Firewall) bool
}

var backendResolvers = []backendResolver{
	{BackendFirewalld, func(fw Firewall) bool { return fw.Firewalld }},
	{BackendUFW, func(fw Firewall) bool { return fw.UFW }},
	{BackendIptablesLegacy, func(fw Firewall) bool { return fw.LegacyLive }},
	{BackendNftables, func(fw Firewall) bool { return fw.Nft != "" }},
	{BackendIptablesNft, func(fw Firewall) bool { return fw.Iptables == "nf_tables" }},
}

func resolveFirewall(d dump) Firewall {
	fw := Firewall{Nft: d.which("nft")}
	if d.which("iptables") != "" {
		fw.Iptables = iptablesFlavour(d.section("iptables-version"))
	}
	names, _ := d.file("/proc/net/ip_tables_names")
	fw.LegacyLive = strings.TrimSpace(names) != ""
	fw.Firewalld = d.service("firewalld").active == "active" || d.running("firewalld")
	if conf, ok := d.file("/etc/firewalld/firewalld.conf"); ok {
		fw.FirewalldBackend = strings.ToLower(keyValues(conf)["FirewallBackend"])
	}
	fw.UFW = ufwActive(d)
	fw.Backend = BackendNone
	for _, r := range backendResolvers {
		if r.is(fw) {
			fw.Backend = r.name
			break
		}
	}
	return fw
}

// iptablesFlavour reads `iptables -V`: "iptables v1.8.9 (nf_tables)" or "(legacy)";
// before 1.8 there was no suffix and every iptables was legacy.
func iptablesFlavour(v string) string {
	switch {
	case v == "":
		return ""
	case strings.Contains(v, "(nf_tables)"):
		return "nf_tables"
	case strings.Contains(v, "(legacy)"), strings.HasPrefix(v, "iptables v1."):
		return "legacy"
	}
	return ""
}

// ufwActive: ENABLED=yes in ufw.conf and the service says so. Without systemd or OpenRC
// the service state is unknown and the config decides.
func ufwActive(d dump) bool {
	conf, ok := d.file("/etc/ufw/ufw.conf")
	if !ok || strings.ToLower(keyValues(conf)["ENABLED"]) != "yes" {
		return false
	}
	switch d.service("ufw").active {
	case "active":
		return true
	case "unknown":
		return d.which("ufw") != ""
	}
	return false
}
