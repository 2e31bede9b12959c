package tasks

import (
	"strings"
	"testing"
)

func TestPersistenceFor(t *testing.T) {
	cases := []struct {
		name         string
		f            Facts
		ok           bool
		path, loader string
	}{
		{"debian systemd", Facts{Distro: Distro{ID: "debian"}, Init: InitSystemd}, true, "/etc/nftables.conf", "systemd"},
		{"ubuntu", Facts{Distro: Distro{ID: "ubuntu", IDLike: []string{"debian"}}, Init: InitSystemd}, true, "/etc/nftables.conf", "systemd"},
		{"devuan sysvinit", Facts{Distro: Distro{ID: "devuan", IDLike: []string{"debian"}}, Init: InitSysvinit}, true, "/etc/nftables.conf", "sysv"},
		{"debian openrc", Facts{Distro: Distro{ID: "debian"}, Init: InitOpenRC}, true, "/etc/nftables.conf", "sysv"},
		{"debian runit", Facts{Distro: Distro{ID: "debian"}, Init: InitRunit}, true, "/etc/nftables.conf", "sysv"},
		{"rocky", Facts{Distro: Distro{ID: "rocky", IDLike: []string{"rhel", "centos", "fedora"}}, Init: InitSystemd}, true, "/etc/sysconfig/nftables.conf", "systemd"},
		{"fedora", Facts{Distro: Distro{ID: "fedora"}, Init: InitSystemd}, true, "/etc/sysconfig/nftables.conf", "systemd"},
		{"centos 6 sysvinit", Facts{Distro: Distro{ID: "centos"}, Init: InitSysvinit}, false, "", ""},
		{"alpine", Facts{Distro: Distro{ID: "alpine"}, Init: InitBusybox}, true, "/etc/nftables.nft", "openrc"},
		{"unknown", Facts{Distro: Distro{ID: "gentoo"}, Init: InitOpenRC}, false, "", ""},
	}
	for _, c := range cases {
		p, ok := PersistenceFor(c.f)
		if ok != c.ok || p.Path != c.path || p.Loader != c.loader {
			t.Errorf("%s: got %+v %v, want %s %s %v", c.name, p, ok, c.path, c.loader, c.ok)
		}
	}
}

func TestPersistContent(t *testing.T) {
	deb, _ := PersistenceFor(Facts{Distro: Distro{ID: "debian"}, Init: InitSystemd})
	got := PersistContent(deb, "table inet f {}")
	if !strings.HasPrefix(got, "#!/usr/sbin/nft -f\n") || !strings.Contains(got, "\nflush ruleset\n") ||
		!strings.HasSuffix(got, "table inet f {}\n") {
		t.Errorf("debian content: %q", got)
	}
	rhel, _ := PersistenceFor(Facts{Distro: Distro{ID: "rhel"}, Init: InitSystemd})
	if got := PersistContent(rhel, "x\n"); strings.HasPrefix(got, "#!") || rhel.Mode != 0o600 {
		t.Errorf("rhel: %q mode %v", got, rhel.Mode)
	}
}

// persistChanges from the sections the probe prints, for each loader state.
func TestPersistChanges(t *testing.T) {
	deb, _ := PersistenceFor(Facts{Distro: Distro{ID: "debian"}, Init: InitSystemd})
	desired := "table inet f {}\n"
	cur := PersistContent(deb, desired)
	kinds := func(ch []Change) string {
		var s []string
		for _, c := range ch {
			s = append(s, string(c.Kind)+":"+c.Path+c.Command)
		}
		return strings.Join(s, " ")
	}
	cases := []struct {
		name string
		p    Persistence
		sec  map[string]string
		want string
		err  bool
	}{
		{"in sync", deb, map[string]string{"persist-file": cur, "loader": "enabled\n"}, "", false},
		{"file differs, disabled", deb, map[string]string{"persist-file": "old\n", "loader": "disabled\n"},
			"file:/etc/nftables.conf command:systemctl enable nftables.service", false},
		{"absent, masked", deb, map[string]string{"persist-absent": "", "loader": "masked\n"},
			"file:/etc/nftables.conf command:systemctl unmask nftables.service && systemctl enable nftables.service", false},
		{"no unit", deb, map[string]string{"persist-file": cur, "loader": "\n"}, "", true},
	}
	sysv, _ := PersistenceFor(Facts{Distro: Distro{ID: "debian"}, Init: InitSysvinit})
	scur := PersistContent(sysv, desired)
	ours := InitScript(sysv.Path)
	cases = append(cases,
		[]struct {
			name string
			p    Persistence
			sec  map[string]string
			want string
			err  bool
		}{
			{"sysv: orphan script enabled", sysv, map[string]string{"persist-file": scur, "loader": "enabled nftables\n"}, "", false},
			{"sysv: orphan script present", sysv, map[string]string{"persist-file": scur, "loader": "present nftables\n"},
				"command:update-rc.d -f nftables remove >/dev/null && update-rc.d nftables defaults", false},
			{"sysv: none", sysv, map[string]string{"persist-file": scur, "loader": "absent\n"},
				"file:/etc/init.d/haltfleet-nftables command:update-rc.d -f haltfleet-nftables remove >/dev/null && update-rc.d haltfleet-nftables defaults", false},
			{"sysv: ours enabled and current", sysv, map[string]string{"persist-file": scur, "loader": "enabled haltfleet-nftables\n", "initscript": ours}, "", false},
			{"sysv: ours enabled but stale", sysv, map[string]string{"persist-file": scur, "loader": "enabled haltfleet-nftables\n", "initscript": "old"},
				"file:/etc/init.d/haltfleet-nftables", false},
		}...)
	alp, _ := PersistenceFor(Facts{Distro: Distro{ID: "alpine"}})
	cases = append(cases, struct {
		name string
		p    Persistence
		sec  map[string]string
		want string
		err  bool
	}{"alpine disabled", alp, map[string]string{"persist-file": PersistContent(alp, desired), "loader": "disabled\n"},
		"command:rc-update add nftables boot", false})
	for _, c := range cases {
		ch, err := persistChanges("h", c.p, desired, c.sec)
		if (err != nil) != c.err || kinds(ch) != c.want {
			t.Errorf("%s: got %q err %v, want %q err %v", c.name, kinds(ch), err, c.want, c.err)
		}
		for _, x := range ch {
			if x.Kind == KindFile && x.Diff == "" {
				t.Errorf("%s: file change without diff", c.name)
			}
		}
	}
}

// The LSB header of our init script is what update-rc.d/insserv read: start in rcS, never stop.
func TestInitScriptHeader(t *testing.T) {
	s := InitScript("/etc/nftables.conf")
	for _, want := range []string{"# Provides:          haltfleet-nftables", "# Default-Start:     S", "# Default-Stop:\n",
		"RULESET=/etc/nftables.conf", "stop)\n\texit 0"} {
		if !strings.Contains(s, want) {
			t.Errorf("init script lacks %q", want)
		}
	}
}

func TestCheckManagedPath(t *testing.T) {
	for _, p := range []string{"/etc/nftables.conf", "/etc/sysctl.d/99-haltfleet.conf"} {
		if err := checkManagedPath(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range []string{"", "/", "etc/x", "/etc/../x", "/etc//x", "/etc/x/"} {
		if err := checkManagedPath(p); err == nil {
			t.Errorf("%q: want error", p)
		}
	}
}

// A ruleset file with its own shebang and flush gets them once, not twice.
func TestPersistContentKeepsOnePreamble(t *testing.T) {
	deb, _ := PersistenceFor(Facts{Distro: Distro{ID: "debian"}, Init: InitSystemd})
	got := PersistContent(deb, "#!/usr/sbin/nft -f\n\nflush ruleset\n\ntable inet f {}\n")
	if n := strings.Count(got, "flush ruleset"); n != 1 {
		t.Errorf("flush ruleset %d times:\n%s", n, got)
	}
	if n := strings.Count(got, "#!"); n != 1 || !strings.Contains(got, "table inet f {}") {
		t.Errorf("shebangs %d, or the table lost:\n%s", n, got)
	}
}
