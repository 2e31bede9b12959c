package tasks

// Init systems haltfleet knows how to park.
const (
	InitSystemd  = "systemd"
	InitSysvinit = "sysvinit"
	InitOpenRC   = "openrc"
	InitRunit    = "runit"
	InitBusybox  = "busybox"
	InitUnknown  = "unknown"
)

// Facts is what one round trip learns about a host. Field names are the JSON keys of
// `haltfleet facts --json`.
type Facts struct {
	Host    string `json:"host"`
	Distro  Distro `json:"distro"`
	Kernel  string `json:"kernel"`  // uname -r
	Arch    string `json:"arch"`    // GOARCH spelling: amd64, arm64, 386, arm, ...
	Machine string `json:"machine"` // uname -m as the host printed it
	Init    string `json:"init"`    // one of the Init* constants
	// InitBase is the init running as PID 1 underneath OpenRC (sysvinit, busybox or
	// openrc for openrc-init); the halt recipe differs. Empty for the other inits.
	InitBase string `json:"init_base,omitempty"`
	PID1     string `json:"pid1"` // /proc/1/comm
	// Container is "" on bare metal or a VM, else the container type (lxc, docker, podman, systemd-nspawn, ...).
	Container string   `json:"container,omitempty"`
	Firewall  Firewall `json:"firewall"`
	// Network lists the network stacks in use: ifupdown, systemd-networkd, NetworkManager, netplan.
	Network []string `json:"network"`
	// FiniteAddrs are addresses whose valid lifetime is not forever (DHCP, SLAAC).
	FiniteAddrs []Addr `json:"finite_addrs,omitempty"`
	RunNoexec   bool   `json:"run_noexec"`
	// Sudo: "root" (already uid 0), "nopasswd", "password" (works with the given password),
	// "needs-password" (none given), "none" (not allowed / not installed).
	Sudo string `json:"sudo"`
	// Halted is set only by probes, never by the facts round trip.
	Warnings []string `json:"warnings,omitempty"`
}

// Distro from os-release or a legacy release file.
type Distro struct {
	ID        string   `json:"id"`
	IDLike    []string `json:"id_like,omitempty"`
	VersionID string   `json:"version_id,omitempty"`
	Name      string   `json:"name,omitempty"` // PRETTY_NAME or the legacy file's line
	Source    string   `json:"source"`         // the file it came from
}

// Firewall describes the packet-filter tooling found.
type Firewall struct {
	// Backend is the primary one: nftables, iptables-nft, iptables-legacy, firewalld, ufw, or none.
	Backend  string `json:"backend"`
	Nft      string `json:"nft,omitempty"`      // path of nft, "" if missing
	Iptables string `json:"iptables,omitempty"` // "nf_tables", "legacy" or ""
	// LegacyLive: /proc/net/ip_tables_names is non-empty.
	LegacyLive       bool   `json:"legacy_live"`
	Firewalld        bool   `json:"firewalld"` // active
	FirewalldBackend string `json:"firewalld_backend,omitempty"`
	UFW              bool   `json:"ufw"` // active
}

// Addr is an interface address with a finite lifetime.
type Addr struct {
	Iface    string `json:"iface"`
	CIDR     string `json:"cidr"`
	ValidLft int64  `json:"valid_lft"` // seconds
}
