package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// newKey generates an ed25519 key pair at path (and path.pub) and returns the public line.
func newKey(ctx context.Context, path, comment string) (string, error) {
	_ = os.Remove(path)
	_ = os.Remove(path + ".pub")
	if _, err := run(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path); err != nil {
		return "", fmt.Errorf("keygen %s: %w", comment, err)
	}
	b, err := os.ReadFile(path + ".pub")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// hostKeyLine drops the comment: known_hosts wants "type base64".
func hostKeyLine(pub string) string {
	f := strings.Fields(pub)
	if len(f) < 2 {
		return pub
	}
	return f[0] + " " + f[1]
}

// interfacesFile is the firewall's ifupdown config: eth0 lan, eth1 wan (default
// route), eth2 management. net.ifnames=0 plus fixed PCI slots keep the names stable.
func interfacesFile() string {
	return `auto lo
iface lo inet loopback

auto eth0
iface eth0 inet static
    address ` + lanFwIP + `/24

auto eth1
iface eth1 inet static
    address ` + wanFwIP + `/24
    gateway ` + wanHostIP + `

auto eth2
iface eth2 inet static
    address ` + mgmtFwIP + `/24
`
}

// networkdFiles is the same config for systemd-networkd.
func networkdFiles() map[string]string {
	unit := func(name, addr, gw string) string {
		s := "[Match]\nName=" + name + "\n\n[Network]\nAddress=" + addr + "\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n"
		if gw != "" {
			s += "Gateway=" + gw + "\n"
		}
		return s
	}
	return map[string]string{
		"/etc/systemd/network/10-eth0.network": unit("eth0", lanFwIP+"/24", ""),
		"/etc/systemd/network/10-eth1.network": unit("eth1", wanFwIP+"/24", wanHostIP),
		"/etc/systemd/network/10-eth2.network": unit("eth2", mgmtFwIP+"/24", ""),
	}
}

// rulesetFile is the lab's example policy for haltfleet to apply: only SSH on the
// management NIC reaches the box; lan may reach wan on tcp/80, tcp/8080 (the NAT
// echo), udp/5353 and ping; tcp/81 is dropped; lan leaves masqueraded.
const rulesetFile = `#!/usr/sbin/nft -f
flush ruleset

table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iif "lo" accept
		iifname "eth2" tcp dport 22 accept
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "eth0" oifname "eth1" tcp dport { 80, 8080 } accept
		iifname "eth0" oifname "eth1" udp dport 5353 accept
		iifname "eth0" oifname "eth1" icmp type echo-request accept
		iifname "eth0" oifname "eth1" tcp dport 81 counter drop
	}
	chain output {
		type filter hook output priority filter; policy accept;
	}
}

table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "eth1" masquerade
	}
}
`

// Probe is one expected flow, as haltfleet_probes lists it.
type Probe struct {
	From   string `yaml:"from"`
	To     string `yaml:"to"` // ADDR:PORT, or ADDR for icmp
	Proto  string `yaml:"proto"`
	Expect string `yaml:"expect"` // open | closed
}

func probesFor(fw string) []Probe {
	from := fw + "-lan"
	return []Probe{
		{From: from, To: wanHostIP + ":80", Proto: "tcp", Expect: "open"},
		{From: from, To: wanHostIP + ":81", Proto: "tcp", Expect: "closed"},
		{From: from, To: wanHostIP + ":5353", Proto: "udp", Expect: "open"},
		{From: from, To: wanHostIP, Proto: "icmp", Expect: "open"},
	}
}

// writeClientFiles writes hosts.yml, known_hosts, ssh_config and the rulesets.
func (l *Lab) writeClientFiles(vmKeys, probeKeys map[string]string) error {
	if err := os.MkdirAll(filepath.Join(l.StateDir, "rulesets"), 0o755); err != nil {
		return err
	}
	var kh, sc strings.Builder
	fws := map[string]any{}
	for _, vm := range l.VMs {
		rs := filepath.Join("rulesets", vm.Name+".nft")
		if err := os.WriteFile(filepath.Join(l.StateDir, rs), []byte(rulesetFile), 0o644); err != nil {
			return err
		}
		fws[vm.Name] = map[string]any{
			"ansible_host":                 "127.0.0.1",
			"ansible_port":                 vm.SSHPort,
			"ansible_user":                 "root",
			"ansible_ssh_private_key_file": l.KeyFile,
			"lab_variant":                  string(vm.Variant),
			"haltfleet_ruleset":            rs,
			"haltfleet_sysctls":            map[string]any{"net.ipv4.ip_forward": 1},
			"haltfleet_probes":             probesFor(vm.Name),
		}
		fmt.Fprintf(&kh, "[127.0.0.1]:%d %s\n", vm.SSHPort, hostKeyLine(vmKeys[vm.Name]))
		fmt.Fprintf(&sc, "Host %s\n  HostName 127.0.0.1\n  Port %d\n%s\n", vm.Name, vm.SSHPort, l.sshOptions())
	}
	probes := map[string]any{}
	for _, p := range l.Probes {
		probes[p.Name] = map[string]any{
			"ansible_host":                 p.Addr,
			"ansible_port":                 22,
			"ansible_user":                 "root",
			"ansible_ssh_private_key_file": l.KeyFile,
			"lab_address":                  p.NetAddr,
		}
		fmt.Fprintf(&kh, "%s %s\n", p.Addr, hostKeyLine(probeKeys[p.Name]))
		fmt.Fprintf(&sc, "Host %s\n  HostName %s\n  Port 22\n%s\n", p.Name, p.Addr, l.sshOptions())
	}
	inv := map[string]any{"all": map[string]any{
		"vars": map[string]any{
			"ansible_ssh_common_args": "-o UserKnownHostsFile=" + l.KnownHosts + " -o StrictHostKeyChecking=yes",
		},
		"children": map[string]any{
			"firewalls": map[string]any{"hosts": fws},
			"probes":    map[string]any{"hosts": probes},
		},
	}}
	b, err := yaml.Marshal(inv)
	if err != nil {
		return err
	}
	b = append([]byte("# Written by the haltfleet VM lab; removed by `lab down`.\n"), b...)
	for path, data := range map[string][]byte{
		l.Inventory:  b,
		l.KnownHosts: []byte(kh.String()),
		l.SSHConfig:  []byte(sc.String()),
	} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) sshOptions() string {
	return "  User root\n  IdentityFile " + l.KeyFile + "\n  IdentitiesOnly yes\n  UserKnownHostsFile " +
		l.KnownHosts + "\n  StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 10\n"
}
