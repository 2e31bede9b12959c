// Package lab runs the VM lab: real Debian 12 firewalls (one per init system) booted
// under qemu TCG, each wired lan — firewall — wan through network namespaces the lab
// creates, with real OpenSSH on the VMs and on the lan/wan "hosts" so probes run over
// SSH exactly as in production. Everything it creates it removes in Down.
//
// Per firewall <fw> (slot N): namespaces hfl-<fw>-lan (host 192.168.10.2, default
// route via the firewall's eth0 192.168.10.1) and hfl-<fw>-wan (host 203.0.113.2,
// the firewall's eth1 203.0.113.1 routes through it), each a bridge plus the VM's tap;
// the VM's eth2 is qemu user-mode networking (10.0.2.15) whose only way in is
// 127.0.0.1:<BasePort+N> → :22. The lan/wan hosts run their own sshd on control links
// 10.199.N.2 and 10.199.N.6 (/30s from the root namespace); the wan host runs socat
// listeners on tcp/80, tcp/81, udp/5353 and tcp/8080 (answers with the peer address,
// to prove masquerading).
//
// By hand: go run ./scripts/labctl up systemd sysvinit; ssh -F
// /var/lib/haltfleet-lab/ssh_config systemd; go run ./scripts/labctl down.
// Test: go test -v ./lab/ (root, qemu, mmdebstrap; images are cached).
package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Variant is an image recipe: which init system and network stack a firewall VM runs.
type Variant string

// The firewall variants; each is a Debian 12 image of its own.
const (
	Systemd  Variant = "systemd"  // systemd-sysv, ifupdown
	SysVinit Variant = "sysvinit" // sysvinit-core, ifupdown
	OpenRC   Variant = "openrc"   // openrc on sysvinit-core, ifupdown
	Runit    Variant = "runit"    // runit-init, ifupdown
	Networkd Variant = "networkd" // systemd-sysv, systemd-networkd static config
)

// Variants lists every variant in build order.
var Variants = []Variant{Systemd, SysVinit, OpenRC, Runit, Networkd}

// Firewall is one firewall VM of the lab.
type Firewall struct {
	Name    string  // short: [a-z][a-z0-9]{0,9}, used in namespace and host names
	Variant Variant // image to boot
}

// Config says where the lab keeps its files and what it boots. Zero values get defaults.
type Config struct {
	CacheDir  string     // images, keyed by recipe hash; default /var/cache/haltfleet-lab
	StateDir  string     // keys, disks, consoles, inventory; default /var/lib/haltfleet-lab
	Mirror    string     // default http://deb.debian.org/debian
	Firewalls []Firewall // default: one per variant, named after it
	// Slot offsets the per-firewall numbering (interface names, 10.199.<slot>.0/29
	// control links, host ports) so two labs (a test and a CLI lab) can coexist.
	Slot        int
	BasePort    int           // host port of the first VM's SSH forward; default 10022
	Parallel    int           // VMs booting at once (TCG is CPU-bound); default 2
	BuildJobs   int           // images built at once; default 2
	BootTimeout time.Duration // per VM, qemu start to SSH; default 360s (shared 2-core hosts)
	MemoryMiB   int           // per VM; default 512
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,9}$`)

func (c Config) withDefaults() (Config, error) {
	if c.CacheDir == "" {
		c.CacheDir = "/var/cache/haltfleet-lab"
	}
	if c.StateDir == "" {
		c.StateDir = "/var/lib/haltfleet-lab"
	}
	if c.Mirror == "" {
		c.Mirror = "http://deb.debian.org/debian"
	}
	if len(c.Firewalls) == 0 {
		for _, v := range Variants {
			c.Firewalls = append(c.Firewalls, Firewall{Name: string(v), Variant: v})
		}
	}
	if c.BasePort == 0 {
		c.BasePort = 10022
	}
	if c.Parallel <= 0 {
		c.Parallel = 2
	}
	if c.BuildJobs <= 0 {
		c.BuildJobs = 2
	}
	if c.BootTimeout <= 0 {
		c.BootTimeout = 360 * time.Second
	}
	if c.MemoryMiB <= 0 {
		c.MemoryMiB = 512
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	if c.Slot < 0 || c.Slot+len(c.Firewalls) > 250 {
		return c, fmt.Errorf("lab: slot %d with %d firewalls is out of range", c.Slot, len(c.Firewalls))
	}
	seen := map[string]bool{}
	for _, fw := range c.Firewalls {
		if !nameRE.MatchString(fw.Name) {
			return c, fmt.Errorf("lab: firewall name %q: want [a-z][a-z0-9]{0,9}", fw.Name)
		}
		if seen[fw.Name] {
			return c, fmt.Errorf("lab: firewall name %q used twice", fw.Name)
		}
		seen[fw.Name] = true
		if _, ok := recipes[fw.Variant]; !ok {
			return c, fmt.Errorf("lab: firewall %s: unknown variant %q", fw.Name, fw.Variant)
		}
	}
	return c, nil
}

// Lab is a running (or recorded) lab, as saved in StateDir/state.json.
type Lab struct {
	StateDir   string      `json:"state_dir"`
	KeyFile    string      `json:"key_file"`    // private key for root and hf everywhere
	KnownHosts string      `json:"known_hosts"` // every VM and probe sshd host key
	SSHConfig  string      `json:"ssh_config"`  // Host blocks for VMs and probes
	Inventory  string      `json:"inventory"`   // hosts.yml
	VMs        []VM        `json:"vms"`
	Probes     []ProbeHost `json:"probes"`
	Started    time.Time   `json:"started"`
}

// VM is one firewall VM.
type VM struct {
	Name      string        `json:"name"`
	Variant   Variant       `json:"variant"`
	Slot      int           `json:"slot"`
	MemoryMiB int           `json:"memory_mib"`
	SSHPort   int           `json:"ssh_port"` // on 127.0.0.1
	PID       int           `json:"pid"`
	Disk      string        `json:"disk"`
	Console   string        `json:"console"`
	Kernel    string        `json:"kernel"`
	Initrd    string        `json:"initrd"`
	LanNS     string        `json:"lan_ns"`
	WanNS     string        `json:"wan_ns"`
	TimeToSSH time.Duration `json:"time_to_ssh"`
	Running   bool          `json:"running"` // filled by Status
}

// ProbeHost is a lan or wan namespace reachable over SSH from the root namespace.
type ProbeHost struct {
	Name      string         `json:"name"` // <fw>-lan, <fw>-wan
	NS        string         `json:"ns"`
	Addr      string         `json:"addr"` // control address sshd listens on
	NetAddr   string         `json:"net_addr"`
	SSHDPID   int            `json:"sshd_pid"`
	Listeners map[string]int `json:"listeners,omitempty"` // name -> pid (wan only)
	Running   bool           `json:"running"`             // sshd alive, filled by Status
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

func (l *Lab) save() error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(l.StateDir) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(l.StateDir))
}

// ErrNoLab means StateDir holds no recorded lab.
var ErrNoLab = errors.New("no lab is up")

// Open loads the recorded lab of cfg.StateDir.
func Open(cfg Config) (*Lab, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(statePath(cfg.StateDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("lab: %s: %w", cfg.StateDir, ErrNoLab)
	}
	if err != nil {
		return nil, fmt.Errorf("lab: open state: %w", err)
	}
	var l Lab
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("lab: parse %s: %w", statePath(cfg.StateDir), err)
	}
	return &l, nil
}

// Status loads the recorded lab and checks which of its processes are alive.
func Status(cfg Config) (*Lab, error) {
	l, err := Open(cfg)
	if err != nil {
		return nil, err
	}
	for i := range l.VMs {
		l.VMs[i].Running = alive(l.VMs[i].PID, "qemu-system")
	}
	for i := range l.Probes {
		l.Probes[i].Running = alive(l.Probes[i].SSHDPID, "sshd")
	}
	return l, nil
}

// VM returns the VM called name.
func (l *Lab) VM(name string) (*VM, error) {
	for i := range l.VMs {
		if l.VMs[i].Name == name {
			return &l.VMs[i], nil
		}
	}
	return nil, fmt.Errorf("lab: no VM %q", name)
}

// Console returns the serial console log of VM fw (every boot, appended).
func (l *Lab) Console(fw string) (string, error) {
	vm, err := l.VM(fw)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(vm.Console)
	if err != nil {
		return "", fmt.Errorf("%s: console: %w", fw, err)
	}
	return string(b), nil
}

// ParseFirewalls reads CLI arguments: "VARIANT" (the VM is named after it) or
// "NAME=VARIANT". No arguments means one firewall per variant.
func ParseFirewalls(args []string) ([]Firewall, error) {
	var fws []Firewall
	for _, a := range args {
		name, v, ok := strings.Cut(a, "=")
		if !ok {
			v = name
		}
		if _, known := recipes[Variant(v)]; !known {
			return nil, fmt.Errorf("lab: %q: unknown variant %q (want one of %v)", a, v, Variants)
		}
		fws = append(fws, Firewall{Name: name, Variant: Variant(v)})
	}
	_, err := Config{Firewalls: fws}.withDefaults()
	return fws, err
}
