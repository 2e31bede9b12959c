package inventory

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSettingsDefaults(t *testing.T) {
	h := mustParse(t, "all:\n  hosts:\n    fw1:\n").Host("fw1")
	want := Settings{Halt: true, DeadmanSeconds: 60, SSHGoneSeconds: 60, ManagePorts: []int{22}, Sysctls: map[string]string{}}
	if !reflect.DeepEqual(h.Settings, want) {
		t.Errorf("defaults %+v, want %+v", h.Settings, want)
	}
}

func TestSettingsParsed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hosts.yml")
	src := `all:
  vars:
    haltfleet_ruleset: rules/edge.nft
    haltfleet_deadman_seconds: 90
    haltfleet_sysctls:
      net.ipv4.ip_forward: 1
      net.ipv6.conf.all.forwarding: yes
      net.ipv4.ip_local_port_range: "32768 60999"
      vm.swappiness: 1.5
    haltfleet_probes:
      - {from: controller, to: "192.0.2.1:443", expect: open}
  children:
    edge:
      vars:
        haltfleet_halt: no
        haltfleet_wave_group: edge
      hosts:
        fw1:
          haltfleet_ruleset: /etc/haltfleet/fw1.nft
          haltfleet_ruleset_template: true
          haltfleet_pin_addresses: on
          haltfleet_ssh_gone_seconds: 30
          haltfleet_manage_ports: [22, 2222]
          haltfleet_probes:
            - from: fw2
              to: "[2001:db8::1]:53"
              proto: udp
              expect: closed
            - {from: controller, to: 2001:db8::2, proto: icmp, expect: open}
        fw2:
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	fw1 := inv.Host("fw1").Settings
	want := Settings{
		Ruleset: "/etc/haltfleet/fw1.nft", RulesetTemplate: true, Halt: false,
		Probes: []Probe{
			{From: "fw2", To: "[2001:db8::1]:53", Proto: "udp", Expect: "closed", Pos: Pos{path, 25}},
			{From: "controller", To: "2001:db8::2", Proto: "icmp", Expect: "open", Pos: Pos{path, 29}},
		},
		Sysctls:        map[string]string{"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1", "net.ipv4.ip_local_port_range": "32768 60999", "vm.swappiness": "1.5"},
		DeadmanSeconds: 90, PinAddresses: true, WaveGroup: "edge", SSHGoneSeconds: 30, ManagePorts: []int{22, 2222},
	}
	if !reflect.DeepEqual(fw1, want) {
		t.Errorf("fw1 settings\n got %+v\nwant %+v", fw1, want)
	}
	fw2 := inv.Host("fw2").Settings
	absDir, _ := filepath.Abs(dir)
	if fw2.Ruleset != filepath.Join(absDir, "rules/edge.nft") || fw2.Halt || fw2.RulesetTemplate {
		t.Errorf("fw2 settings %+v: want group ruleset under %s, halt false", fw2, absDir)
	}
	if len(fw2.Probes) != 1 || fw2.Probes[0].Proto != "tcp" || fw2.Probes[0].Pos.Line != 11 {
		t.Errorf("fw2 probes %+v: want the all-level probe with proto tcp at line 11", fw2.Probes)
	}
	// Ansible keeps haltfleet_ vars as ordinary vars: so do we, raw.
	if inv.Host("fw2").Vars["haltfleet_ruleset"] != "rules/edge.nft" {
		t.Errorf("raw var %v", inv.Host("fw2").Vars["haltfleet_ruleset"])
	}
}

func TestBadSettings(t *testing.T) {
	const f = "inv/hosts.yml:"
	host := func(vars string) string {
		return "all:\n  hosts:\n    fw1:\n" + vars + "    fw2:\n"
	}
	tests := []struct{ name, src, want string }{
		{"halt not bool", host("      haltfleet_halt: maybe\n"), f + `4: host "fw1": haltfleet_halt: want a boolean, got "maybe"`},
		{"halt quoted", host("      haltfleet_halt: \"true\"\n"), `haltfleet_halt: want a boolean, got "true"`},
		{"halt null", host("      haltfleet_halt:\n"), `haltfleet_halt: want a boolean, got null`},
		{"template list", host("      haltfleet_ruleset_template: [1]\n"), f + `4: host "fw1": haltfleet_ruleset_template: want a boolean, got a list`},
		{"deadman zero", host("      haltfleet_deadman_seconds: 0\n"), f + `4: host "fw1": haltfleet_deadman_seconds: must be greater than 0`},
		{"deadman text", host("      haltfleet_deadman_seconds: soon\n"), `want an integer, got "soon"`},
		{"ssh gone negative", host("      haltfleet_ssh_gone_seconds: -5\n"), `haltfleet_ssh_gone_seconds: must be greater than 0`},
		{"ruleset escapes", host("      haltfleet_ruleset: ../../etc/x\n"), f + `4: host "fw1": haltfleet_ruleset: relative path "../../etc/x" escapes the inventory directory`},
		{"ruleset escapes after clean", host("      haltfleet_ruleset: rules/../../x\n"), `escapes the inventory directory`},
		{"ruleset number", host("      haltfleet_ruleset: 5\n"), `haltfleet_ruleset: want a non-empty string, got "5"`},
		{"wave group map", host("      haltfleet_wave_group: {a: 1}\n"), `haltfleet_wave_group: want a string, got a mapping`},
		{"ports not list", host("      haltfleet_manage_ports: 22\n"), `haltfleet_manage_ports: want a list of ports, got scalar "22"`},
		{"port range", host("      haltfleet_manage_ports: [22, 70000]\n"), f + `4: host "fw1": haltfleet_manage_ports: port 70000 out of range`},
		{"port text", host("      haltfleet_manage_ports: [ssh]\n"), `want an integer, got "ssh"`},
		{"sysctls list", host("      haltfleet_sysctls: [a]\n"), `haltfleet_sysctls: want a mapping of sysctl names to values`},
		{"sysctl nested", host("      haltfleet_sysctls:\n        net: {ipv4: 1}\n"), f + `5: host "fw1": haltfleet_sysctls: want a scalar value, got a mapping (sysctl net)`},
		{"probes map", host("      haltfleet_probes: {from: controller}\n"), `haltfleet_probes: want a list of probes, got a mapping`},
		{"probe not map", host("      haltfleet_probes: [x]\n"), `probe must be a mapping`},
		{"probe no from", host("      haltfleet_probes:\n        - {to: \"1.2.3.4:80\", expect: open}\n"), f + `5: host "fw1": haltfleet_probes: probe needs from:`},
		{"probe no to", host("      haltfleet_probes:\n        - {from: controller, expect: open}\n"), `probe needs to: ADDR:PORT`},
		{"probe proto", host("      haltfleet_probes:\n        - {from: controller, to: \"1.2.3.4:80\", proto: sctp, expect: open}\n"), `probe proto "sctp": want tcp, udp or icmp`},
		{"probe expect", host("      haltfleet_probes:\n        - {from: controller, to: \"1.2.3.4:80\", expect: filtered}\n"), `probe expect "filtered": want open or closed`},
		{"probe no expect", host("      haltfleet_probes:\n        - {from: controller, to: \"1.2.3.4:80\"}\n"), `probe expect "": want open or closed`},
		{"probe tcp without port", host("      haltfleet_probes:\n        - {from: controller, to: 1.2.3.4, expect: open}\n"), `probe to "1.2.3.4": want ADDR:PORT for tcp`},
		{"probe bad port", host("      haltfleet_probes:\n        - {from: controller, to: \"1.2.3.4:0\", expect: open}\n"), `bad port "0"`},
		{"probe unknown field", host("      haltfleet_probes:\n        - {from: controller, to: \"1.2.3.4:80\", expect: open, timeout: 3}\n"), f + `5: host "fw1": haltfleet_probes: unknown probe field "timeout"`},
		{"probe field type", host("      haltfleet_probes:\n        - {from: [a], to: \"1.2.3.4:80\", expect: open}\n"), `want a string, got a list (probe field from)`},
		{"probe from unknown host", host("      haltfleet_probes:\n        - {from: fw9, to: \"1.2.3.4:80\", expect: open}\n"),
			f + `5: host "fw1": haltfleet_probes: from "fw9" is neither an inventory host nor "controller"`},
		{"probe from unknown, group level", "web:\n  vars:\n    haltfleet_probes:\n      - {from: ghost, to: \"1.2.3.4:80\", expect: open}\n  hosts:\n    fw1:\n",
			f + `4: host "fw1": haltfleet_probes: from "ghost"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("inv/hosts.yml", []byte(tt.src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v\nwant %q", err, tt.want)
			}
		})
	}
}

func TestProbeFromHostInLaterFile(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yml")
	b := filepath.Join(dir, "b.yml")
	os.WriteFile(a, []byte("edge:\n  hosts:\n    fw1:\n      haltfleet_probes:\n        - {from: probe1, to: \"10.0.0.1:80\", expect: open}\n"), 0o600)
	os.WriteFile(b, []byte("probers:\n  hosts:\n    probe1:\n"), 0o600)
	if _, err := LoadAll(a, b); err != nil {
		t.Fatalf("probe from a host defined in a later file: %v", err)
	}
	if _, err := Load(a); err == nil || !strings.Contains(err.Error(), `from "probe1"`) {
		t.Fatalf("alone, a.yml must fail on probe1: %v", err)
	}
}

func TestRulesetText(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "plain.nft"), []byte("table inet f {}\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "tmpl.nft"), []byte("# {{.inventory_hostname}} {{.group_names}}\ndefine wan = {{.wan}}\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "missing.nft"), []byte("{{.nope}}\n"), 0o600)
	src := `edge:
  vars: {wan: eth1}
  hosts:
    plain: {haltfleet_ruleset: plain.nft, haltfleet_ruleset_template: true}
    raw: {haltfleet_ruleset: tmpl.nft}
    tmpl: {haltfleet_ruleset: tmpl.nft, haltfleet_ruleset_template: true}
    missing: {haltfleet_ruleset: missing.nft, haltfleet_ruleset_template: true}
    unset:
`
	os.WriteFile(filepath.Join(dir, "hosts.yml"), []byte(src), 0o600)
	inv, err := Load(filepath.Join(dir, "hosts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ host, want, err string }{
		{"plain", "table inet f {}\n", ""},
		{"raw", "# {{.inventory_hostname}} {{.group_names}}\ndefine wan = {{.wan}}\n", ""},
		{"tmpl", "# tmpl [edge]\ndefine wan = eth1\n", ""},
		{"missing", "", `map has no entry for key "nope"`},
		{"unset", "", "haltfleet_ruleset is not set"},
	}
	for _, tt := range tests {
		got, err := inv.Host(tt.host).RulesetText()
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), tt.host+": ") {
				t.Errorf("%s: error %v, want %q", tt.host, err, tt.err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.host, got, err, tt.want)
		}
	}
}
