package fleetlab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// rulesetFile is the fleet's example policy for haltfleet to apply: only SSH (and
// replies, and loopback) reaches a host.
const rulesetFile = `#!/usr/sbin/nft -f
flush ruleset

table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iif "lo" accept
		tcp dport 22 accept
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
	}
	chain output {
		type filter hook output priority filter; policy accept;
	}
}
`

// writeClientFiles writes hosts.yml, known_hosts and rulesets/fleet.nft for hosts.
func (f *Fleet) writeClientFiles(hosts []Host) error {
	if err := os.MkdirAll(filepath.Join(f.StateDir, "rulesets"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(f.StateDir, "rulesets", "fleet.nft"), []byte(rulesetFile), 0o644); err != nil {
		return err
	}
	var kh strings.Builder
	members := map[string]any{}
	for _, h := range hosts {
		members[h.Name] = map[string]any{"ansible_host": h.Addr}
		fmt.Fprintf(&kh, "%s %s\n", h.Addr, h.HostKey)
	}
	inv := map[string]any{"all": map[string]any{
		"children": map[string]any{
			"fleet": map[string]any{
				"hosts": members,
				"vars": map[string]any{
					"ansible_user":                 "root",
					"ansible_ssh_private_key_file": f.KeyFile,
					"ansible_ssh_common_args":      "-o UserKnownHostsFile=" + f.KnownHosts + " -o StrictHostKeyChecking=yes",
					"haltfleet_halt":               false,
					"haltfleet_ruleset":            "rulesets/fleet.nft",
					"haltfleet_sysctls":            map[string]any{"net.ipv4.ip_forward": 1},
				},
			},
		},
	}}
	b, err := yaml.Marshal(inv)
	if err != nil {
		return err
	}
	b = append([]byte("# Written by the haltfleet fleet lab; removed by its Down.\n"), b...)
	if err := os.WriteFile(f.KnownHosts, []byte(kh.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(f.Inventory, b, 0o644)
}
