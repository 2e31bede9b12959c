// Package e2e proves the product on real kernels: Debian 12 VMs under qemu with real
// init systems, made halted firewalls by `haltfleet up`, then checked from outside.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/cmd/haltfleet/cli"
	"github.com/haltfleet/haltfleet/internal/testenv"
	"github.com/haltfleet/haltfleet/lab"
	"github.com/haltfleet/haltfleet/tasks"
)

const wanHost = "203.0.113.2" // the wan namespace's host, behind each firewall

// inits reads HALTFLEET_E2E_INITS (default systemd,sysvinit: what CI runs).
func inits() []lab.Firewall {
	list := os.Getenv("HALTFLEET_E2E_INITS")
	if list == "" {
		list = "systemd,sysvinit"
	}
	var fws []lab.Firewall
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		// An "x" prefix keeps the namespaces apart from a `haltfleet lab` running beside.
		fws = append(fws, lab.Firewall{Name: "x" + n, Variant: lab.Variant(n)})
	}
	return fws
}

var cliMu sync.Mutex

// haltfleet runs the CLI in-process and returns its exit code and output.
func haltfleet(ctx context.Context, t *testing.T, args ...string) (int, string) {
	t.Helper()
	cliMu.Lock()
	defer cliMu.Unlock()
	var out bytes.Buffer
	oldOut, oldErr := cli.Stdout, cli.Stderr
	cli.Stdout, cli.Stderr = &out, &out
	defer func() { cli.Stdout, cli.Stderr = oldOut, oldErr }()
	code := cli.RunContext(ctx, args)
	t.Logf("haltfleet %s -> exit %d\n%s", strings.Join(args, " "), code, out.String())
	return code, out.String()
}

func TestE2E(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "qemu-system-x86_64", "mmdebstrap", "mkfs.ext4", "ssh", "/usr/sbin/sshd", "socat", "nc", "ping", "ip")
	ctx, cancel := context.WithTimeout(context.Background(), 70*time.Minute)
	defer cancel()

	cfg := lab.Config{StateDir: t.TempDir(), Firewalls: inits(), Slot: 120, BasePort: 12022, Logf: t.Logf}
	t.Cleanup(func() {
		if err := lab.Down(context.Background(), cfg); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	start := time.Now()
	l, err := lab.Up(ctx, cfg)
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Logf("lab up with %d VMs in %s", len(l.VMs), time.Since(start).Round(time.Second))
	common := []string{"-i", l.Inventory, "-F", "none", "--forks", "8"}

	// A ruleset that fails `nft -c` changes nothing on any host.
	t.Run("invalid ruleset changes nothing", func(t *testing.T) {
		before := rulesets(ctx, t, l)
		bad := filepath.Join(l.StateDir, "bad.yml")
		writeBadInventory(t, l, bad)
		code, out := haltfleet(ctx, t, "up", "-i", bad, "-F", "none", "--limit", "firewalls", "--yes")
		if code != 1 || !strings.Contains(out, "ruleset") {
			t.Fatalf("up with an invalid ruleset: exit %d, want 1 naming the ruleset", code)
		}
		if after := rulesets(ctx, t, l); !equalMaps(before, after) {
			t.Fatalf("rulesets changed by a failed up:\nbefore %v\nafter  %v", before, after)
		}
	})

	events := filepath.Join(l.StateDir, "events.ndjson")
	code, out := haltfleet(ctx, t, append([]string{"up", "--limit", "firewalls", "--yes", "--events", events}, common...)...)
	if code != 0 {
		time.Sleep(5 * time.Second) // let a slow guest's last console lines arrive
		for _, vm := range l.VMs {
			t.Logf("%s console, last lines:\n%s", vm.Name, consoleTail(l, vm))
		}
		t.Fatalf("haltfleet up: exit %d", code)
	}
	for _, vm := range l.VMs {
		if !strings.Contains(out, vm.Name) || !strings.Contains(out, "halted and probed in") {
			t.Errorf("recap lacks %s halted and probed", vm.Name)
		}
	}
	printTimings(t, events)

	for _, vm := range l.VMs {
		vm := vm
		t.Run(vm.Name, func(t *testing.T) {
			checkHalted(ctx, t, l, vm)
			// A second up on a halted host does not log in: it probes and says halted.
			code, out := haltfleet(ctx, t, append([]string{"up", "--limit", vm.Name, "--yes"}, common...)...)
			if code != 0 || !strings.Contains(out, "does not answer SSH: probing only") {
				t.Errorf("second up on halted %s: exit %d, want 0 and probing only", vm.Name, code)
			}
			checkPowerCycle(ctx, t, l, vm)
		})
	}
}

// checkHalted proves from outside that vm is a halted firewall.
func checkHalted(ctx context.Context, t *testing.T, l *lab.Lab, vm lab.VM) {
	dctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	if err := tasks.DialSSH(fmt.Sprintf("127.0.0.1:%d", vm.SSHPort))(dctx); err == nil {
		t.Errorf("%s: SSH still answers after the halt", vm.Name)
	}
	flows(ctx, t, vm, true)

	// SSH dies early in the shutdown; the console's last lines (remount, census) can come
	// later on a slow guest, so wait for the final line before reading the console.
	final := "haltfleet-idle: parked"
	if vm.Variant == lab.SysVinit || vm.Variant == lab.OpenRC {
		final = "no more processes left in this runlevel"
	}
	var console string
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(2 * time.Second) {
		c, err := l.Console(vm.Name)
		if err != nil {
			t.Fatal(err)
		}
		if console = c; strings.Contains(c, final) || time.Now().After(deadline) {
			break
		}
	}
	switch vm.Variant {
	case lab.SysVinit, lab.OpenRC:
		// init alone in runlevel 0 with / remounted read-only is the sysvinit end state;
		// the console shows the steps in this order on the halt boot.
		rest := console
		for _, want := range []string{"Switching to runlevel: 0", "EXT4-fs (vda): re-mounted",
			"haltfleet: armed, leaving the CPU running", "no more processes left in this runlevel"} {
			i := strings.Index(rest, want)
			if i < 0 {
				t.Fatalf("%s console lacks %q (in order):\n%s", vm.Name, want, tailOf(console, 2500))
			}
			rest = rest[i+len(want):]
		}
		t.Logf("%s: census: init alone in runlevel 0, / remounted read-only (the sysvinit end state)", vm.Name)
	default:
		line := censusLine(console)
		if line == "" {
			t.Fatalf("%s: no idle-init census on the console:\n%s", vm.Name, tailOf(console, 2500))
		}
		t.Logf("%s: %s", vm.Name, line)
		if vm.Variant == lab.Runit {
			// runit stays PID 1 and the idle init is its stage 3 child: / stays mounted
			// read-only, as DESIGN.md records for runit.
			if !strings.Contains(console, "EXT4-fs (vda): re-mounted") {
				t.Errorf("%s: no read-only remount of / on the console", vm.Name)
			}
			break
		}
		if !strings.Contains(line, "pid=1 others=0") {
			t.Errorf("%s: census shows other processes: %s", vm.Name, line)
		}
		if !strings.Contains(line, "disks=none") {
			t.Errorf("%s: census shows a disk filesystem still mounted: %s", vm.Name, line)
		}
	}
}

// flows checks each allowed flow passes lan→wan and each blocked one is dropped,
// straight from the lan namespace (not through haltfleet's own probes).
func flows(ctx context.Context, t *testing.T, vm lab.VM, halted bool) {
	t.Helper()
	ns := vm.LanNS
	must := func(what string, ok bool, out []byte, err error) {
		t.Helper()
		if !ok {
			t.Errorf("%s (halted=%v): %s: %v %s", vm.Name, halted, what, err, out)
		}
	}
	out, err := lab.Exec(ctx, ns, "nc", "-z", "-w", "3", wanHost, "80")
	must("tcp/80 allowed", err == nil, out, err)
	out, err = lab.Exec(ctx, ns, "nc", "-z", "-w", "3", wanHost, "81")
	must("tcp/81 dropped", err != nil, out, err)
	// UDP to a busy TCG guest can lose a datagram: three tries, as the probes do.
	out, err = lab.Exec(ctx, ns, "sh", "-c", "for i in 1 2 3; do r=$(echo ping | nc -u -w 3 "+wanHost+" 5353); [ -n \"$r\" ] && break; done; echo \"$r\"")
	must("udp/5353 allowed", err == nil && strings.Contains(string(out), "hf-udp-5353"), out, err)
	out, err = lab.Exec(ctx, ns, "ping", "-c", "1", "-W", "3", wanHost)
	must("icmp echo allowed", err == nil, out, err)
	out, err = lab.Exec(ctx, ns, "sh", "-c", "nc -w 3 "+wanHost+" 8080 </dev/null")
	must("NAT: wan sees the firewall's address", err == nil && strings.Contains(string(out), "203.0.113.1"), out, err)
}

// checkPowerCycle: the VM comes back with the ruleset loaded, and a human's plain
// reboot then reboots normally.
func checkPowerCycle(ctx context.Context, t *testing.T, l *lab.Lab, vm lab.VM) {
	start := time.Now()
	if err := l.PowerCycle(ctx, vm.Name); err != nil {
		t.Fatalf("power cycle: %v", err)
	}
	t.Logf("%s: power cycle to SSH in %s", vm.Name, time.Since(start).Round(time.Second))
	rs, err := l.SSH(ctx, vm.Name, "nft list ruleset; cat /proc/sys/net/ipv4/ip_forward")
	if err != nil || !strings.Contains(string(rs), "masquerade") || !strings.HasSuffix(strings.TrimSpace(string(rs)), "1") {
		t.Fatalf("%s after power cycle: ruleset or ip_forward not restored: %v\n%s", vm.Name, err, rs)
	}
	flows(ctx, t, vm, false)

	boot1, err := l.SSH(ctx, vm.Name, "cat /proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = l.SSH(ctx, vm.Name, "nohup sh -c 'sleep 1; reboot' >/dev/null 2>&1 &")
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		time.Sleep(5 * time.Second)
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		boot2, err := l.SSH(cctx, vm.Name, "cat /proc/sys/kernel/random/boot_id")
		cancel()
		if err == nil && len(boot2) > 0 && !bytes.Equal(boot1, boot2) {
			t.Logf("%s: a plain reboot rebooted normally in %s", vm.Name, time.Since(deadline.Add(-10*time.Minute)).Round(time.Second))
			return
		}
	}
	t.Errorf("%s: a plain reboot did not come back with a new boot id within 10 minutes\n%s", vm.Name, consoleTail(l, vm))
}

func censusLine(console string) string {
	for _, line := range strings.Split(console, "\n") {
		if i := strings.Index(line, "haltfleet-idle: parked"); i >= 0 {
			return strings.TrimSpace(line[i:])
		}
	}
	return ""
}

func consoleTail(l *lab.Lab, vm lab.VM) string {
	c, _ := l.Console(vm.Name)
	return tailOf(c, 2000)
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func rulesets(ctx context.Context, t *testing.T, l *lab.Lab) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, vm := range l.VMs {
		out, err := l.SSH(ctx, vm.Name, "nft list ruleset | sha256sum")
		if err != nil {
			t.Fatal(err)
		}
		m[vm.Name] = strings.TrimSpace(string(out))
	}
	return m
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// writeBadInventory copies the lab inventory with every firewall's ruleset replaced by
// one that fails `nft -c` (a port out of range).
func writeBadInventory(t *testing.T, l *lab.Lab, path string) {
	t.Helper()
	inv, err := os.ReadFile(l.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	badRS := filepath.Join(l.StateDir, "rulesets", "bad.nft")
	if err := os.WriteFile(badRS, []byte("table inet filter {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    tcp dport 99999 accept\n  }\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, line := range strings.Split(string(inv), "\n") {
		if k, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == "haltfleet_ruleset" {
			indent := line[:len(line)-len(strings.TrimLeft(line, " "))]
			line = indent + "haltfleet_ruleset: rulesets/bad.nft"
		}
		lines = append(lines, line)
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// printTimings reports, per host, the time from `up` to "halted and probed".
func printTimings(t *testing.T, path string) {
	f, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("events: %v", err)
		return
	}
	first, last := map[string]time.Time{}, map[string]time.Time{}
	for _, line := range bytes.Split(f, []byte("\n")) {
		var e tasks.Event
		if json.Unmarshal(line, &e) != nil || e.Host == "" {
			continue
		}
		if _, ok := first[e.Host]; !ok {
			first[e.Host] = e.Time
		}
		last[e.Host] = e.Time
	}
	for h, t0 := range first {
		t.Logf("TIMING %s: up to halted and probed in %s", h, last[h].Sub(t0).Round(100*time.Millisecond))
	}
}
