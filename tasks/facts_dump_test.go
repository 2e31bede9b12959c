package tasks

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// readDump loads testdata/facts/NAME/dump.txt, one host's script output.
func readDump(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "facts", name, "dump.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFactsFromDumps(t *testing.T) {
	nft := "/usr/sbin/nft"
	tests := []struct {
		dump string
		want Facts
	}{
		{"debian12", Facts{
			Distro: Distro{ID: "debian", VersionID: "12", Name: "Debian GNU/Linux 12 (bookworm)", Source: "/etc/os-release"},
			Kernel: "6.1.0-37-amd64", Arch: "amd64", Machine: "x86_64", Init: InitSystemd, PID1: "systemd",
			Firewall:  Firewall{Backend: BackendNftables, Nft: nft, Iptables: "nf_tables"},
			Network:   []string{NetIfupdown},
			RunNoexec: true, Sudo: SudoRoot,
		}},
		{"debian13", Facts{
			Distro: Distro{ID: "debian", VersionID: "13", Name: "Debian GNU/Linux 13 (trixie)", Source: "/etc/os-release"},
			Kernel: "6.12.48+deb13-amd64", Arch: "amd64", Machine: "x86_64", Init: InitSystemd, PID1: "systemd",
			Firewall:    Firewall{Backend: BackendNftables, Nft: nft},
			Network:     []string{NetSystemdNetwork},
			FiniteAddrs: []Addr{{Iface: "ens4", CIDR: "198.51.100.23/24", ValidLft: 86391}},
			RunNoexec:   true, Sudo: SudoNopasswd,
		}},
		{"ubuntu2204", Facts{
			Distro: Distro{ID: "ubuntu", IDLike: []string{"debian"}, VersionID: "22.04", Name: "Ubuntu 22.04.4 LTS", Source: "/etc/os-release"},
			Kernel: "5.15.0-119-generic", Arch: "amd64", Machine: "x86_64", Init: InitSystemd, PID1: "systemd",
			Firewall: Firewall{Backend: BackendUFW, Nft: nft, Iptables: "nf_tables", UFW: true},
			Network:  []string{NetSystemdNetwork, NetNetplan},
			FiniteAddrs: []Addr{
				{Iface: "ens3", CIDR: "10.0.2.15/24", ValidLft: 86313},
				{Iface: "ens3", CIDR: "fec0::5054:ff:fe12:3456/64", ValidLft: 86279},
			},
			RunNoexec: true, Sudo: SudoNopasswd,
		}},
		{"ubuntu2404", Facts{
			Distro: Distro{ID: "ubuntu", IDLike: []string{"debian"}, VersionID: "24.04", Name: "Ubuntu 24.04.1 LTS", Source: "/etc/os-release"},
			Kernel: "6.8.0-45-generic", Arch: "amd64", Machine: "x86_64", Init: InitSystemd, PID1: "systemd",
			Firewall: Firewall{Backend: BackendNftables, Nft: nft, Iptables: "nf_tables"},
			Network:  []string{NetNetworkManager, NetNetplan},
			FiniteAddrs: []Addr{
				{Iface: "enp0s3", CIDR: "192.168.1.57/24", ValidLft: 85997},
				{Iface: "enp0s3", CIDR: "2001:db8:1::a00:27ff:fe4e:66a1/64", ValidLft: 2591867},
			},
			RunNoexec: true, Sudo: SudoNeedsPassword,
			Warnings: []string{"sudo needs a password"},
		}},
		{"rhel9", Facts{
			Distro: Distro{ID: "rhel", IDLike: []string{"fedora"}, VersionID: "9.4", Name: "Red Hat Enterprise Linux 9.4 (Plow)", Source: "/etc/os-release"},
			Kernel: "5.14.0-427.13.1.el9_4.x86_64", Arch: "amd64", Machine: "x86_64", Init: InitSystemd, PID1: "systemd",
			Firewall: Firewall{Backend: BackendFirewalld, Nft: nft, Iptables: "nf_tables", Firewalld: true, FirewalldBackend: "nftables"},
			Network:  []string{NetNetworkManager},
			Sudo:     SudoNopasswd,
		}},
		{"rocky9", Facts{
			Distro: Distro{ID: "rocky", IDLike: []string{"rhel", "centos", "fedora"}, VersionID: "9.4", Name: "Rocky Linux 9.4 (Blue Onyx)", Source: "/etc/os-release"},
			Kernel: "5.14.0-427.13.1.el9_4.x86_64", Arch: "amd64", Machine: "x86_64", Init: InitSystemd, PID1: "systemd",
			Firewall:    Firewall{Backend: BackendNftables, Nft: nft, Iptables: "nf_tables", FirewalldBackend: "nftables"},
			Network:     []string{NetNetworkManager},
			FiniteAddrs: []Addr{{Iface: "eth0", CIDR: "10.0.2.15/24", ValidLft: 86200}},
			Sudo:        SudoNeedsPassword,
			Warnings:    []string{"sudo needs a password"},
		}},
		{"fedora40", Facts{
			Distro: Distro{ID: "fedora", VersionID: "40", Name: "Fedora Linux 40 (Server Edition)", Source: "/etc/os-release"},
			Kernel: "6.8.5-301.fc40.x86_64", Arch: "amd64", Machine: "x86_64", Init: InitSystemd, PID1: "systemd",
			Firewall:    Firewall{Backend: BackendFirewalld, Nft: nft, Iptables: "nf_tables", Firewalld: true, FirewalldBackend: "nftables"},
			Network:     []string{NetNetworkManager},
			FiniteAddrs: []Addr{{Iface: "enp1s0", CIDR: "2001:db8:40::5054:ff:fe3c:1d0e/64", ValidLft: 2591990}},
			Sudo:        SudoRoot,
		}},
		{"alpine320", Facts{
			Distro: Distro{ID: "alpine", VersionID: "3.20.3", Name: "Alpine Linux v3.20", Source: "/etc/os-release"},
			Kernel: "6.6.49-0-lts", Arch: "amd64", Machine: "x86_64", Init: InitOpenRC, InitBase: InitBusybox, PID1: "init",
			Firewall:    Firewall{Backend: BackendIptablesLegacy, Nft: nft, Iptables: "legacy", LegacyLive: true},
			Network:     []string{NetIfupdown},
			FiniteAddrs: []Addr{{Iface: "eth0", CIDR: "10.0.2.15/24", ValidLft: 86321}},
			Sudo:        SudoRoot,
		}},
		{"arch", Facts{
			Distro: Distro{ID: "arch", Name: "Arch Linux", Source: "/etc/os-release"},
			Kernel: "6.10.10-arch1-1", Arch: "amd64", Machine: "x86_64", Init: InitSystemd, PID1: "systemd",
			Firewall: Firewall{Backend: BackendNftables, Nft: "/usr/bin/nft"},
			Network:  []string{NetSystemdNetwork},
			Sudo:     SudoRoot,
		}},
		{"void", Facts{
			Distro: Distro{ID: "void", Name: "Void Linux", Source: "/etc/os-release"},
			Kernel: "6.6.52_1", Arch: "amd64", Machine: "x86_64", Init: InitRunit, PID1: "runit",
			Firewall:    Firewall{Backend: BackendNftables, Nft: "/usr/bin/nft"},
			FiniteAddrs: []Addr{{Iface: "eth0", CIDR: "10.0.2.15/24", ValidLft: 86383}},
			Sudo:        SudoRoot,
		}},
		{"centos7", Facts{
			Distro: Distro{ID: "centos", IDLike: []string{"rhel", "fedora"}, VersionID: "7", Name: "CentOS Linux 7 (Core)", Source: "/etc/os-release"},
			Kernel: "3.10.0-1160.119.1.el7.x86_64", Arch: "amd64", Machine: "x86_64", Init: InitSystemd, PID1: "systemd",
			Firewall:    Firewall{Backend: BackendFirewalld, Iptables: "legacy", LegacyLive: true, Firewalld: true},
			Network:     []string{NetNetworkManager},
			FiniteAddrs: []Addr{{Iface: "eth0", CIDR: "10.0.2.15/24", ValidLft: 86093}},
			Sudo:        SudoNeedsPassword,
			Warnings:    []string{"sudo needs a password"},
		}},
		{"redhat62", Facts{
			Distro: Distro{ID: "redhat", VersionID: "6.2", Name: "Red Hat Linux release 6.2 (Zoot)", Source: "/etc/redhat-release"},
			Kernel: "2.2.14-5.0", Arch: "386", Machine: "i686", Init: InitSysvinit, PID1: "init",
			Firewall: Firewall{Backend: BackendNone},
			Sudo:     SudoRoot,
			Warnings: []string{"address lifetimes unknown: neither `ip -j addr` nor `ip addr` answered"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.dump, func(t *testing.T) {
			got, err := parseFacts(readDump(t, tt.dump))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("facts differ\n got: %+v\nwant: %+v", got, tt.want)
			}
		})
	}
}

// The dumps are assembled from root/ by mkdump.sh; a file edited without regenerating
// the dump would make the tests lie about what they read.
func TestDumpsMatchReleaseFiles(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join("testdata", "facts", "*", "dump.txt"))
	if len(dirs) < 12 {
		t.Fatalf("found %d dumps, want at least 12", len(dirs))
	}
	for _, dumpPath := range dirs {
		dir := filepath.Dir(dumpPath)
		b, _ := os.ReadFile(dumpPath)
		d, err := parseDump(b)
		if err != nil {
			t.Fatalf("%s: %v", dumpPath, err)
		}
		if !d.complete {
			t.Errorf("%s: no end marker", dumpPath)
		}
		root := filepath.Join(dir, "root")
		filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			want, _ := os.ReadFile(p)
			got, ok := d.file(strings.TrimPrefix(p, root))
			if !ok || got != strings.TrimSuffix(string(want), "\n") {
				t.Errorf("%s: section for %s differs from the file; run ./mkdump.sh", dumpPath, p)
			}
			return nil
		})
	}
}

// releaseDump builds a dump holding only DIR/root's files, minus drop.
func releaseDump(t *testing.T, dir string, drop ...string) dump {
	t.Helper()
	d := dump{sections: map[string]string{}, complete: true}
	root := filepath.Join("testdata", "facts", dir, "root")
	err := filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		path := strings.TrimPrefix(p, root)
		for _, x := range drop {
			if x == path {
				return nil
			}
		}
		b, err := os.ReadFile(p)
		d.sections["file "+path] = strings.TrimSuffix(string(b), "\n")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestResolveDistroFromReleaseFiles(t *testing.T) {
	osr := []string{"/etc/os-release", "/usr/lib/os-release"}
	tests := []struct {
		name string
		dir  string
		drop []string
		want Distro
	}{
		{"debian 12 /usr/lib fallback", "debian12", osr[:1], Distro{ID: "debian", VersionID: "12", Name: "Debian GNU/Linux 12 (bookworm)", Source: "/usr/lib/os-release"}},
		{"debian 12 debian_version only", "debian12", osr, Distro{ID: "debian", VersionID: "12.11", Name: "Debian GNU/Linux 12.11", Source: "/etc/debian_version"}},
		{"debian 13", "debian13", nil, Distro{ID: "debian", VersionID: "13", Name: "Debian GNU/Linux 13 (trixie)", Source: "/etc/os-release"}},
		{"ubuntu 24.04 debian_version is not Ubuntu's", "ubuntu2404", osr, Distro{ID: "debian", Name: "Debian GNU/Linux trixie/sid", Source: "/etc/debian_version"}},
		{"rhel 9 redhat-release", "rhel9", osr, Distro{ID: "rhel", IDLike: []string{"fedora"}, VersionID: "9.4", Name: "Red Hat Enterprise Linux release 9.4 (Plow)", Source: "/etc/redhat-release"}},
		{"rocky 9 redhat-release", "rocky9", osr, Distro{ID: "rocky", IDLike: []string{"rhel", "centos", "fedora"}, VersionID: "9.4", Name: "Rocky Linux release 9.4 (Blue Onyx)", Source: "/etc/redhat-release"}},
		{"fedora 40 redhat-release", "fedora40", osr, Distro{ID: "fedora", VersionID: "40", Name: "Fedora release 40 (Forty)", Source: "/etc/redhat-release"}},
		{"centos 7 redhat-release", "centos7", osr, Distro{ID: "centos", IDLike: []string{"rhel", "fedora"}, VersionID: "7.9.2009", Name: "CentOS Linux release 7.9.2009 (Core)", Source: "/etc/redhat-release"}},
		{"centos 6", "centos6", nil, Distro{ID: "centos", IDLike: []string{"rhel", "fedora"}, VersionID: "6.10", Name: "CentOS release 6.10 (Final)", Source: "/etc/redhat-release"}},
		{"rhel 7 server", "rhel7", nil, Distro{ID: "rhel", IDLike: []string{"fedora"}, VersionID: "7.9", Name: "Red Hat Enterprise Linux Server release 7.9 (Maipo)", Source: "/etc/redhat-release"}},
		{"red hat linux 6.2", "redhat62", nil, Distro{ID: "redhat", VersionID: "6.2", Name: "Red Hat Linux release 6.2 (Zoot)", Source: "/etc/redhat-release"}},
		{"alpine-release", "alpine320", osr, Distro{ID: "alpine", VersionID: "3.20.3", Name: "Alpine Linux 3.20.3", Source: "/etc/alpine-release"}},
		{"arch-release is empty", "arch", osr, Distro{ID: "arch", Name: "Arch Linux", Source: "/etc/arch-release"}},
		{"void", "void", nil, Distro{ID: "void", Name: "Void Linux", Source: "/etc/os-release"}},
		{"nothing at all", "void", osr, Distro{ID: "unknown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := resolveDistro(releaseDump(t, tt.dir, tt.drop...))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestOSReleaseQuoting(t *testing.T) {
	kv := keyValues("# comment\nPRETTY_NAME=\"Rocky \\\"Onyx\\\" \\$x\"\nVERSION_ID='9.4'\nID=rocky\nBROKEN\n")
	if kv["PRETTY_NAME"] != `Rocky "Onyx" $x` || kv["VERSION_ID"] != "9.4" || kv["ID"] != "rocky" || len(kv) != 3 {
		t.Errorf("got %q", kv)
	}
}

func TestNormaliseArch(t *testing.T) {
	for machine, want := range map[string]string{
		"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm", "i686": "386", "i386": "386",
		"ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64", "loongarch64": "loong64", "sparc64": "",
	} {
		if got := normaliseArch(machine); got != want {
			t.Errorf("normaliseArch(%q) = %q, want %q", machine, got, want)
		}
	}
}

func TestResolveInit(t *testing.T) {
	tests := []struct {
		name       string
		p          pid1
		init, base string
	}{
		{"systemd", pid1{comm: "systemd", systemdRun: true}, InitSystemd, ""},
		{"systemd seen as init", pid1{comm: "init", sbinInit: "/usr/lib/systemd/systemd", systemdRun: true}, InitSystemd, ""},
		{"sysvinit, not root", pid1{comm: "init", sbinInit: "/usr/sbin/init"}, InitSysvinit, ""},
		{"sysvinit, root", pid1{comm: "init", exe: "/sbin/init", sbinInit: "/sbin/init"}, InitSysvinit, ""},
		{"openrc on sysvinit (Debian)", pid1{comm: "init", sbinInit: "/usr/sbin/init", openrcRun: true}, InitOpenRC, InitSysvinit},
		{"openrc on busybox (Alpine)", pid1{comm: "init", exe: "/bin/busybox", openrcRun: true}, InitOpenRC, InitBusybox},
		{"openrc-init", pid1{comm: "openrc-init", openrcRun: true}, InitOpenRC, InitOpenRC},
		{"runit (Void)", pid1{comm: "runit", sbinInit: "/usr/bin/runit-init"}, InitRunit, ""},
		{"busybox", pid1{comm: "init", sbinInit: "/bin/busybox"}, InitBusybox, ""},
		{"runit dir but another PID 1", pid1{comm: "process_api"}, InitUnknown, ""},
		{"container shell", pid1{comm: "sh"}, InitUnknown, ""},
		{"init, nothing readable", pid1{comm: "init"}, InitUnknown, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := dump{sections: map[string]string{
				"file /proc/1/comm": tt.p.comm, "pid1-exe": tt.p.exe, "sbin-init": tt.p.sbinInit,
			}}
			var ex []string
			if tt.p.systemdRun {
				ex = append(ex, "/run/systemd/system")
			}
			if tt.p.openrcRun {
				ex = append(ex, "/run/openrc")
			}
			d.sections["exists"] = strings.Join(ex, "\n")
			init, base, comm := resolveInit(d)
			if init != tt.init || base != tt.base || comm != tt.p.comm {
				t.Errorf("got %q/%q/%q, want %q/%q/%q", init, base, comm, tt.init, tt.base, tt.p.comm)
			}
		})
	}
}

func TestLinkTarget(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/lib/systemd/systemd":                                          "/usr/lib/systemd/systemd",
		"lrwxrwxrwx 1 root root 0 Mar 12 10:00 /proc/1/exe -> /sbin/init":   "/sbin/init",
		"lrwxrwxrwx 1 root root 0 Mar 12 10:00 /proc/1/exe -> [0301]:16":    "",
		"lrwxrwxrwx 1 root root 0 Mar 12 10:00 /proc/1/exe":                 "",
		"-rwxr-xr-x   1 root     root        21020 Feb 25  2000 /sbin/init": "/sbin/init",
		"": "",
	} {
		if got := linkTarget(in); got != want {
			t.Errorf("linkTarget(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResolveContainer(t *testing.T) {
	tests := []struct {
		name     string
		sections map[string]string
		want     string
	}{
		{"bare metal", map[string]string{"detect-virt": "none"}, ""},
		{"detect-virt", map[string]string{"detect-virt": "lxc"}, "lxc"},
		{"systemd marker", map[string]string{"file /run/systemd/container": "systemd-nspawn"}, "systemd-nspawn"},
		{"container_type", map[string]string{"file /run/container_type": "lxc\n"}, "lxc"},
		{"environ", map[string]string{"environ-container": "container=LXC"}, "lxc"},
		{"dockerenv", map[string]string{"exists": "/.dockerenv"}, "docker"},
		{"containerenv", map[string]string{"exists": "/run/.containerenv"}, "podman"},
		{"detect-virt wins", map[string]string{"detect-virt": "docker", "environ-container": "container=lxc"}, "docker"},
	}
	for _, tt := range tests {
		if got := resolveContainer(dump{sections: tt.sections}); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestFirewallBackendOrder(t *testing.T) {
	tests := []struct {
		name     string
		sections map[string]string
		want     string
	}{
		{"nothing", nil, BackendNone},
		{"iptables-nft only", map[string]string{"which": "iptables /usr/sbin/iptables", "iptables-version": "iptables v1.8.9 (nf_tables)"}, BackendIptablesNft},
		{"nft beats iptables-nft", map[string]string{"which": "nft /usr/sbin/nft\niptables /usr/sbin/iptables", "iptables-version": "iptables v1.8.9 (nf_tables)"}, BackendNftables},
		{"live legacy beats nft", map[string]string{"which": "nft /usr/sbin/nft", "file /proc/net/ip_tables_names": "filter"}, BackendIptablesLegacy},
		{"ufw beats legacy", map[string]string{"file /proc/net/ip_tables_names": "filter", "file /etc/ufw/ufw.conf": "ENABLED=yes", "services": "ufw active enabled"}, BackendUFW},
		{"ufw enabled but stopped", map[string]string{"which": "nft /usr/sbin/nft", "file /etc/ufw/ufw.conf": "ENABLED=yes", "services": "ufw inactive enabled"}, BackendNftables},
		{"firewalld beats ufw", map[string]string{"running": "firewalld", "file /etc/ufw/ufw.conf": "ENABLED=yes", "services": "ufw active enabled"}, BackendFirewalld},
	}
	for _, tt := range tests {
		if got := resolveFirewall(dump{sections: tt.sections}).Backend; got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestRunNoexecFromProcMounts(t *testing.T) {
	for mounts, want := range map[string]bool{
		"/dev/vda1 / ext4 rw 0 0\ntmpfs /run tmpfs rw,nosuid,noexec 0 0": true,
		"/dev/vda1 / ext4 rw,noexec 0 0\ntmpfs /run tmpfs rw 0 0":        false,
		"/dev/vda1 / ext4 rw,noexec 0 0":                                 true,
		"":                                                               false,
	} {
		if got := runNoexec(dump{sections: map[string]string{"proc-mounts": mounts}}); got != want {
			t.Errorf("%q: got %v, want %v", mounts, got, want)
		}
	}
}

func TestParseDumpRejectsForeignOutput(t *testing.T) {
	for _, in := range []string{"", "Welcome to host!\n@@hf:abc begin\n", "@@hf: begin\n", "@@hf:a b begin\n"} {
		if _, err := parseDump([]byte(in)); err == nil {
			t.Errorf("%q: parsed without a begin marker", in)
		}
	}
}

// A host file that prints marker-like lines cannot open sections: only this run's nonce does.
func TestParseDumpForgedMarkers(t *testing.T) {
	out := "@@hf:good begin\n@@hf:good file /etc/os-release\nID=debian\n@@hf:evil uid\n0\n@@hf:goo uid\n" +
		"@@hf:good uid\n1000\n@@hf:good sudo\nok\n@@hf:good end\n@@hf:good uid\n0\n"
	f, err := parseFacts([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if f.Sudo != SudoNopasswd || f.Distro.ID != "debian" {
		t.Errorf("forged sections took effect: %+v", f)
	}
}

func TestTruncatedDumpWarns(t *testing.T) {
	b := readDump(t, "debian12")
	b = b[:len(b)/2]
	f, err := parseFacts(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Distro.ID != "debian" || len(f.Warnings) == 0 || !strings.Contains(f.Warnings[0], "ended early") {
		t.Errorf("got %+v", f)
	}
}

func TestHostileStringsAreCleaned(t *testing.T) {
	evil := "\x1b]0;pwned\x07\x1b[31mEvil\x1b[0m\u202e OS\r\t\x00\x9b2J" + strings.Repeat("A", 5000)
	out := "@@hf:n begin\n@@hf:n file /etc/os-release\nID=\"de\x1b[2Jbian\"\nPRETTY_NAME=\"" + evil + "\"\n" +
		"@@hf:n uname\n\x1b[1m6.1\x1b[0m\nx86_64\n@@hf:n end\n"
	f, err := parseFacts([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if f.Distro.ID != "debian" || f.Kernel != "6.1" {
		t.Errorf("id %q kernel %q", f.Distro.ID, f.Kernel)
	}
	if !strings.HasPrefix(f.Distro.Name, "Evil OS 2JAAA") || len([]rune(f.Distro.Name)) != maxField {
		t.Errorf("name %q (%d runes)", f.Distro.Name, len([]rune(f.Distro.Name)))
	}
	for _, kv := range f.Summary() {
		for _, r := range kv.Value {
			if r < 0x20 || (r >= 0x7f && r < 0xa0) || isBidiControl(r) {
				t.Errorf("%s holds control rune %U", kv.Key, r)
			}
		}
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                      "plain",
		"a\tb\n\nc":                  "a b c",
		"\x1b[1;31mred\x1b[0m":       "red",
		"\x1b]8;;http://x\x1b\\link": "link",
		"bad\xffutf8":                "badutf8",
		"\u202eevil\u2066":           "evil",
		"  trim  ":                   "trim",
		"\x1b":                       "",
		"\x1b[":                      "",
		"ok\x7fdel\u0085nel":         "okdelnel",
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSummary(t *testing.T) {
	f, err := parseFacts(readDump(t, "alpine320"))
	if err != nil {
		t.Fatal(err)
	}
	f.Host = "fw1"
	got := f.Summary()
	keys := []string{"host", "distro", "kernel", "arch", "init", "container", "firewall", "network", "finite addresses", "/run noexec", "sudo", "warnings"}
	if len(got) != len(keys) {
		t.Fatalf("got %d rows: %+v", len(got), got)
	}
	want := map[string]string{
		"host": "fw1", "distro": "Alpine Linux v3.20", "arch": "amd64", "init": "openrc on busybox (pid 1: init)",
		"container": "-", "firewall": "iptables-legacy (nft, iptables legacy, legacy tables live)",
		"network": "ifupdown", "finite addresses": "eth0 10.0.2.15/24 86321s", "/run noexec": "no", "warnings": "-",
	}
	for i, kv := range got {
		if kv.Key != keys[i] {
			t.Errorf("row %d is %q, want %q", i, kv.Key, keys[i])
		}
		if w, ok := want[kv.Key]; ok && kv.Value != w {
			t.Errorf("%s = %q, want %q", kv.Key, kv.Value, w)
		}
	}
}
