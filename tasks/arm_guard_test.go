package tasks

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haltfleet/haltfleet/internal/testenv"
)

func TestWithGuard(t *testing.T) {
	g := stopGuard("x", "", "")
	tests := []struct {
		name, in   string
		beforeExit bool
		want       string
	}{
		{"empty file", "", false, g},
		{"appends with newline", "A=1", false, "A=1\n" + g},
		{"replaces an old block in place", "A=1\n" + guardBegin + "\nold\n" + guardEnd + "\nB=2\n", false, "A=1\n" + g + "B=2\n"},
		{"before a trailing exit", "run\nexit 0\n", true, "run\n" + g + "exit 0\n"},
		{"no exit: at the end", "run\n\n", true, "run\n\n" + g},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := withGuard(tc.in, g, tc.beforeExit)
			if got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
			if again := withGuard(got, g, tc.beforeExit); again != got {
				t.Errorf("not idempotent:\n%q", again)
			}
		})
	}
}

func TestWithNoStop(t *testing.T) {
	tests := []struct{ in, want string }{
		{"#rc_nostop=\"\"\n", "#rc_nostop=\"\"\n# haltfleet: keep the network and the firewall up at shutdown\nrc_nostop=\"networking nftables\"\n"},
		{"rc_nostop=\"sshd\"\nx=1\n", "rc_nostop=\"sshd networking nftables\"\nx=1\n"},
		{"rc_nostop='nftables networking'\n", "rc_nostop='nftables networking'\n"},
	}
	for _, tc := range tests {
		if got := withNoStop(tc.in, "networking", "nftables"); got != tc.want {
			t.Errorf("withNoStop(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// guardLab runs the real Debian scripts from testdata in a private mount namespace where
// /usr/sbin (= /sbin), /etc/default and /run are test directories: stub halt, ifdown,
// ifup, nft and sv record their calls in /run/calls, so nothing on this machine is touched.
type guardLab struct {
	t                   *testing.T
	dir, sbin, def, run string
	scripts             string
}

func newGuardLab(t *testing.T) *guardLab {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "unshare", "mount", "sh")
	for _, f := range []string{"/lib/lsb/init-functions", "/lib/init/init-d-script", "/lib/init/vars.sh"} {
		if _, err := os.Stat(f); err != nil {
			testenv.Missing(t, "Debian's %s (sysvinit-utils, lsb-base)", f)
		}
	}
	d := t.TempDir()
	l := &guardLab{t: t, dir: d, sbin: filepath.Join(d, "sbin"), def: filepath.Join(d, "default"),
		run: filepath.Join(d, "run"), scripts: filepath.Join(d, "scripts")}
	for _, p := range []string{l.sbin, l.def, l.run, l.scripts} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, stub := range []string{"halt", "ifdown", "ifup", "nft", "sv", "idle"} {
		l.write(filepath.Join(l.sbin, stub), "#!/bin/sh\necho \""+stub+" $*\" >> /run/calls\n", 0o755)
	}
	l.write(filepath.Join(l.run, "runit.reboot"), "", 0o000) // runit: mode 000 = halt, not reboot
	return l
}

func (l *guardLab) write(p, content string, mode os.FileMode) {
	l.t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		l.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		l.t.Fatal(err)
	}
}

// script copies a real script from testdata under name and returns its path.
func (l *guardLab) script(fixture, name, edit string) string {
	p := filepath.Join(l.scripts, name)
	c := readFixture(l.t, fixture)
	if edit != "" {
		c += edit
	}
	l.write(p, c, 0o755)
	return p
}

// run executes command inside the namespace, armed or not, and returns the stub calls.
func (l *guardLab) exec(armed bool, command string) (calls, output string, err error) {
	_ = os.Remove(filepath.Join(l.run, "calls"))
	_ = os.RemoveAll(filepath.Join(l.run, "haltfleet"))
	if armed {
		if err := os.MkdirAll(filepath.Join(l.run, "haltfleet"), 0o755); err != nil {
			l.t.Fatal(err)
		}
		l.write(filepath.Join(l.run, "haltfleet", "armed"), "", 0o644)
	}
	driver := "set -e\n" +
		"mount --bind " + l.sbin + " /usr/sbin\n" +
		"mount --bind " + l.def + " /etc/default\n" +
		"mount --bind " + l.run + " /run\n" +
		"set +e\n" + command + "\n"
	out, err := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", driver).CombinedOutput()
	b, _ := os.ReadFile(filepath.Join(l.run, "calls"))
	return string(b), string(out), err
}

func TestGuardsOnRealDebianScripts(t *testing.T) {
	l := newGuardLab(t)
	halt := l.script("init.d-halt", "K08halt", "")
	networking := l.script("init.d-networking", "K05networking", "")
	nftables := l.script("init.d-nftables", "K01nftables", "")
	// another init-d-script user reading /etc/default/none must not be stopped short
	other := l.script("init.d-nftables", "K01other", "")

	// the arm plan's content for each default file, built by the same code PlanArm uses
	l.write(filepath.Join(l.def, "halt"), withGuard(readFixture(t, "default-halt"), stopGuard(sysvScripts["halt"].what, "__init_d_script_name", ""), false), 0o644)
	l.write(filepath.Join(l.def, "networking"), withGuard(readFixture(t, "default-networking"), stopGuard(sysvScripts["networking"].what, "__init_d_script_name", ""), false), 0o644)
	nftFile, match := sysvScripts["nftables"].guard(armFile{Exists: true, Content: readFixture(t, "init.d-nftables")})
	if nftFile != "/etc/default/none" {
		t.Fatalf("nftables default file = %q, want /etc/default/none (init-d-script with DAEMON=none)", nftFile)
	}
	l.write(filepath.Join(l.def, "none"), stopGuard(sysvScripts["nftables"].what, "__init_d_script_name", match), 0o644)

	tests := []struct {
		name      string
		armed     bool
		cmd       string
		wantCalls string
	}{
		{"halt unarmed halts", false, halt + " stop", "halt -d -f -i -p -h\n"},
		{"halt armed does not", true, halt + " stop", ""},
		{"networking unarmed downs interfaces", false, networking + " stop", "ifdown -a --exclude=lo\n"},
		{"networking armed keeps them", true, networking + " stop", ""},
		{"networking armed still starts", true, networking + " start", "ifup -a\n"},
		{"nftables unarmed flushes", false, nftables + " stop", "nft flush ruleset\n"},
		{"nftables armed keeps the ruleset", true, nftables + " stop", ""},
		{"nftables armed still starts", true, nftables + " start", "nft -f /etc/nftables.conf\n"},
		{"other script sharing the default file still stops", true, other + " stop", "nft flush ruleset\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls, out, err := l.exec(tc.armed, tc.cmd)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			// ifup's start path also tries hotplug interfaces; keep the first call
			if strings.HasPrefix(tc.wantCalls, "ifup") {
				calls, _, _ = strings.Cut(calls, "\n")
				calls += "\n"
			}
			if calls != tc.wantCalls {
				t.Errorf("calls = %q, want %q\noutput:\n%s", calls, tc.wantCalls, out)
			}
			if tc.armed && tc.wantCalls == "" && !strings.Contains(out, "haltfleet: armed") {
				t.Errorf("armed stop did not say why it skipped:\n%s", out)
			}
		})
	}
}

func TestRunitStage3GuardOnRealScript(t *testing.T) {
	l := newGuardLab(t)
	idle := filepath.Join(l.sbin, "idle")
	stage3 := l.script("runit-3", "3", "")
	l.write(stage3, withGuard(readFixture(t, "runit-3"), runitGuard(idle), true), 0o755)
	for _, armed := range []bool{false, true} {
		calls, out, err := l.exec(armed, stage3+"; echo \"stage3 exit=$?\"")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !strings.Contains(calls, "sv force-stop") {
			t.Errorf("armed=%v: stage 3 did not stop services first: %q", armed, calls)
		}
		gotIdle := strings.Contains(calls, "idle halt")
		if gotIdle != armed {
			t.Errorf("armed=%v: idle init exec'd = %v; calls %q\n%s", armed, gotIdle, calls, out)
		}
	}
}
