package tasks

import (
	"fmt"
	"strings"
)

// KV is one row of a per-host facts table.
type KV struct {
	Key, Value string
}

// Summary lists the facts as ordered key/value rows for the CLI's per-host table.
// Every value is already sanitised; empty values read "-".
func (f Facts) Summary() []KV {
	distro := f.Distro.Name
	if distro == "" {
		distro = strings.TrimSpace(f.Distro.ID + " " + f.Distro.VersionID)
	}
	fw := f.Firewall.Backend
	var tools []string
	if f.Firewall.Nft != "" {
		tools = append(tools, "nft")
	}
	if f.Firewall.Iptables != "" {
		tools = append(tools, "iptables "+f.Firewall.Iptables)
	}
	if f.Firewall.LegacyLive {
		tools = append(tools, "legacy tables live")
	}
	if f.Firewall.FirewalldBackend != "" {
		tools = append(tools, "firewalld backend "+f.Firewall.FirewalldBackend)
	}
	if len(tools) > 0 {
		fw += " (" + strings.Join(tools, ", ") + ")"
	}
	addrs := make([]string, 0, len(f.FiniteAddrs))
	for _, a := range f.FiniteAddrs {
		addrs = append(addrs, fmt.Sprintf("%s %s %ds", a.Iface, a.CIDR, a.ValidLft))
	}
	initv := f.Init
	if f.InitBase != "" && f.InitBase != f.Init {
		initv += " on " + f.InitBase
	}
	if f.PID1 != "" && f.PID1 != f.Init {
		initv += " (pid 1: " + f.PID1 + ")"
	}
	rows := []KV{
		{"host", f.Host},
		{"distro", distro},
		{"kernel", f.Kernel},
		{"arch", f.Arch},
		{"init", initv},
		{"container", f.Container},
		{"firewall", fw},
		{"network", strings.Join(f.Network, ", ")},
		{"finite addresses", strings.Join(addrs, ", ")},
		{"/run noexec", yesNo(f.RunNoexec)},
		{"sudo", f.Sudo},
		{"warnings", strings.Join(f.Warnings, "; ")},
	}
	for i := range rows {
		if rows[i].Value == "" {
			rows[i].Value = "-"
		}
	}
	return rows
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
