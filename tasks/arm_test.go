package tasks

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haltfleet/haltfleet/inventory"
)

// updateGolden rewrites golden files (go test ./tasks -update). Defined once for the
// package; another test file wanting -update should use this variable.
var updateGolden = func() *bool {
	if f := flag.Lookup("update"); f != nil {
		v := f.Value.(flag.Getter).Get().(bool)
		return &v
	}
	return flag.Bool("update", false, "rewrite golden files")
}()

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "arm", "debian", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const debianRC0 = `/etc/rc0.d/K01hwclock.sh /etc/init.d/hwclock.sh -
/etc/rc0.d/K01nftables /etc/init.d/nftables teardown
/etc/rc0.d/K01ssh /etc/init.d/ssh -
/etc/rc0.d/K02sendsigs /etc/init.d/sendsigs -
/etc/rc0.d/K03rsyslog /etc/init.d/rsyslog -
/etc/rc0.d/K04umountnfs.sh /etc/init.d/umountnfs.sh -
/etc/rc0.d/K05networking /etc/init.d/networking teardown
/etc/rc0.d/K06umountfs /etc/init.d/umountfs -
/etc/rc0.d/K07umountroot /etc/init.d/umountroot -
/etc/rc0.d/K08halt /etc/init.d/halt -
`

// armCase is one host shape PlanArm must handle.
type armCase struct {
	name  string
	facts Facts
	host  func(t *testing.T) *fakeHost
}

func debianSysvHost(t *testing.T) *fakeHost {
	h := newFakeHost("fw1")
	h.sections["rc0"] = debianRC0
	h.files["/etc/init.d/nftables"] = readFixture(t, "init.d-nftables")
	h.files["/etc/default/halt"] = readFixture(t, "default-halt")
	h.files["/etc/default/networking"] = readFixture(t, "default-networking")
	return h
}

func armCases() []armCase {
	base := Facts{Host: "fw1", Arch: "amd64", Firewall: Firewall{Backend: "nftables", Nft: "/usr/sbin/nft"}}
	with := func(init string, mod func(*Facts)) Facts {
		f := base
		f.Init = init
		if mod != nil {
			mod(&f)
		}
		return f
	}
	return []armCase{
		{"systemd-ifupdown", with(InitSystemd, nil), func(t *testing.T) *fakeHost {
			h := newFakeHost("fw1")
			h.units = []fakeUnit{
				{"nftables.service", "{ path=/usr/sbin/nft ; argv[]=/usr/sbin/nft flush ruleset ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }", ""},
				{"networking.service", "{ path=/sbin/ifdown ; argv[]=/sbin/ifdown -a --read-environment --exclude=lo ; ignore_errors=no }", "{ path=/usr/bin/timeout ; argv[]=/usr/bin/timeout 30 /bin/sh -c if [ -f /run/network/restart-hotplug ]; then systemctl restart ifupdown-hotplug.service; fi ; ignore_errors=no }"},
				{"ifup@eth0.service", "{ path=/sbin/ifdown ; argv[]=/sbin/ifdown eth0 ; ignore_errors=no }", ""},
				{"ifup@eth1.service", "{ path=/sbin/ifdown ; argv[]=/sbin/ifdown eth1 ; ignore_errors=no }", ""},
				{"ssh.service", "", ""},
			}
			return h
		}},
		{"systemd-firewalld", with(InitSystemd, func(f *Facts) {
			f.Firewall.Firewalld, f.Firewall.Backend = true, "firewalld"
		}), func(t *testing.T) *fakeHost {
			h := newFakeHost("fw1")
			h.units = []fakeUnit{{"firewalld.service", "", ""}, {"NetworkManager.service", "", ""}}
			h.files[firewalldConf] = "# firewalld config file\nDefaultZone=public\nCleanupOnUnload=yes\nCleanupOnExit=yes\nFirewallBackend=nftables\n"
			return h
		}},
		{"systemd-wireguard-dracut", with(InitSystemd, nil), func(t *testing.T) *fakeHost {
			h := newFakeHost("fw1")
			h.exitrd = "tmpfs rw,nosuid,nodev,noexec,relatime"
			h.units = []fakeUnit{
				{"wg-quick@wg0.service", "{ path=/usr/bin/wg-quick ; argv[]=/usr/bin/wg-quick down wg0 ; ignore_errors=no }", ""},
				{"dracut-shutdown.service", "{ path=/usr/lib/dracut/dracut-initramfs-restart ; argv[]=/usr/lib/dracut/dracut-initramfs-restart ; ignore_errors=no }", ""},
				{"systemd-networkd.service", "", ""},
			}
			return h
		}},
		{"sysvinit-debian", with(InitSysvinit, nil), debianSysvHost},
		{"openrc-debian", with(InitOpenRC, nil), func(t *testing.T) *fakeHost {
			h := newFakeHost("fw1")
			h.files[openrcConf] = readFixture(t, "rc.conf")
			h.files["/etc/default/halt"] = readFixture(t, "default-halt")
			return h
		}},
		{"runit-debian", with(InitRunit, nil), func(t *testing.T) *fakeHost {
			h := debianSysvHost(t)
			h.files[runitStage3] = readFixture(t, "runit-3")
			h.modes[runitStage3] = 0o755
			return h
		}},
	}
}

// renderPlan prints changes for golden files; the idle hash varies with its build.
func renderPlan(chs []Change) string {
	var b strings.Builder
	for _, c := range chs {
		fmt.Fprintf(&b, "== %s %s %s", c.Stage, c.Kind, c.Summary)
		if c.Path != "" {
			fmt.Fprintf(&b, "\npath: %s mode %#o", c.Path, c.Mode)
		}
		if c.Command != "" {
			fmt.Fprintf(&b, "\ncommand: %s", c.Command)
		}
		if c.Diff != "" {
			fmt.Fprintf(&b, "\n%s", strings.TrimRight(c.Diff, "\n"))
		}
		b.WriteString("\n\n")
	}
	return strings.ReplaceAll(b.String(), idleSHA256("amd64"), "<IDLE-SHA256>")
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", "arm", name+".golden")
	if *updateGolden {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from golden:\n%s", name, UnifiedDiff("want", "got", string(want), got))
	}
}

func TestPlanArmGolden(t *testing.T) {
	for _, tc := range armCases() {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.host(t)
			chs, err := PlanArm(context.Background(), h, "fw1", tc.facts, inventory.Settings{Halt: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(chs) == 0 {
				t.Fatal("no arm changes on an unarmed host")
			}
			// one round trip, plus one only when an init-d-script's default file was unknown
			if n := len(h.commands()); n > 2 {
				t.Errorf("PlanArm used %d round trips", n)
			}
			for _, c := range chs {
				if c.Host != "fw1" || c.Stage != "arm" {
					t.Errorf("change %q has host %q stage %q", c.Summary, c.Host, c.Stage)
				}
			}
			checkGolden(t, tc.name, renderPlan(chs))
		})
	}
}

// TestArmIdempotent applies the plan to the modelled host, then plans again: an armed
// host plans nothing and Verify passes.
func TestArmIdempotent(t *testing.T) {
	ctx := context.Background()
	s := inventory.Settings{Halt: true}
	for _, tc := range armCases() {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.host(t)
			h.sections["addrs"] = `[{"ifname":"lo","addr_info":[{"local":"127.0.0.1","prefixlen":8,"valid_life_time":4294967295}]},{"ifname":"eth0","addr_info":[{"local":"192.0.2.1","prefixlen":24,"valid_life_time":4294967295}]}]`
			if rep, err := Verify(ctx, h, tc.facts, s, ""); err == nil {
				t.Fatalf("Verify passed on an unarmed host: %+v", rep)
			}
			chs, err := PlanArm(ctx, h, "fw1", tc.facts, s)
			if err != nil {
				t.Fatal(err)
			}
			if err := Apply(ctx, h, chs, ApplyEnv{}); err != nil {
				t.Fatal(err)
			}
			again, err := PlanArm(ctx, h, "fw1", tc.facts, s)
			if err != nil {
				t.Fatal(err)
			}
			if len(again) != 0 {
				t.Fatalf("second plan on an armed host:\n%s", renderPlan(again))
			}
			rep, err := Verify(ctx, h, tc.facts, s, "")
			if err != nil {
				t.Fatalf("Verify on the armed host: %v\n%+v", err, rep.Failed())
			}
			for _, c := range h.commands() {
				if strings.Contains(c, ArmFlag) && !strings.Contains(c, armSectionMark) {
					t.Errorf("arming touched the arm flag: %s", c)
				}
			}
		})
	}
}
