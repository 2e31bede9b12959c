package fleetlab_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/haltfleet/haltfleet/fleetlab"
	"github.com/haltfleet/haltfleet/internal/testenv"
	"github.com/haltfleet/haltfleet/inventory"
)

// Each test has its own prefix and slot, so they never meet a CLI fleet (hff, slot 0).
func testConfig(t *testing.T, prefix string, slot int) fleetlab.Config {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "mmdebstrap", "ip", "nsenter", "/usr/sbin/sshd")
	cfg := fleetlab.Config{N: 10, StateDir: filepath.Join(t.TempDir(), "fleet"), Parallel: 4,
		Logf: t.Logf, Prefix: prefix, Slot: slot}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := fleetlab.Down(ctx, cfg); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return cfg
}

func TestUpSSHInitNftDown(t *testing.T) {
	cfg := testConfig(t, "hft", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	f, err := fleetlab.Up(ctx, cfg)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	if len(f.Hosts) != cfg.N {
		t.Fatalf("Up: %d hosts, want %d", len(f.Hosts), cfg.N)
	}
	t.Logf("%d hosts answer SSH after %s", len(f.Hosts), f.Took)
	if _, err := fleetlab.Up(ctx, cfg); !errors.Is(err, fleetlab.ErrExists) {
		t.Errorf("second Up on a running fleet = %v, want ErrExists", err)
	}

	st, err := fleetlab.Status(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range st.Hosts {
		if !h.Running {
			t.Errorf("%s: Status says init %d is not running", h.Name, h.InitPID)
		}
	}

	inv, err := inventory.Load(f.Inventory)
	if err != nil {
		t.Fatalf("inventory: %v", err)
	}
	for _, h := range f.Hosts {
		ih := inv.Host(h.Name)
		if ih == nil || ih.Vars["ansible_host"] != h.Addr || !slicesContains(ih.Groups, "fleet") {
			t.Errorf("inventory: %s missing or wrong: %+v", h.Name, ih)
			continue
		}
		if rs, err := ih.RulesetText(); err != nil || !strings.Contains(string(rs), "policy drop") {
			t.Errorf("inventory: %s ruleset: %v %q", h.Name, err, rs)
		}
	}

	for _, h := range f.Hosts {
		c := dial(t, f, h.Addr, "root")
		for cmd, want := range map[string]string{
			"cat /proc/1/comm": "init",
			"runlevel":         "N 2",
			"hostname":         h.Name,
			"tr '\\0' '\\n' < /proc/1/environ | grep ^container=": "container=lxc",
		} {
			if out := strings.TrimSpace(runOn(t, c, h.Name, cmd, nil)); out != want {
				t.Errorf("%s: %s = %q, want %q", h.Name, cmd, out, want)
			}
		}
		if out := runOn(t, c, h.Name, "nft list ruleset", nil); !strings.Contains(out, "table inet filter") {
			t.Errorf("%s: boot did not load /etc/nftables.conf: %q", h.Name, out)
		}
		if out := runOn(t, c, h.Name, "pgrep -x sshd >/dev/null && echo sshd; ps -e --no-headers | wc -l", nil); !strings.HasPrefix(out, "sshd\n") {
			t.Errorf("%s: sshd not in the host's own PID namespace: %q", h.Name, out)
		}
		c.Close()
		hf := dial(t, f, h.Addr, "hf")
		if out := strings.TrimSpace(runOn(t, hf, h.Name, "sudo -n id -u", nil)); out != "0" {
			t.Errorf("%s: hf sudo: %q", h.Name, out)
		}
		hf.Close()
	}

	// Strict host key checking: h002's key under h001's address must be refused.
	wrong := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(wrong, []byte(f.Hosts[0].Addr+" "+f.Hosts[1].HostKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := dialWith(f, f.Hosts[0].Addr, "root", wrong); err == nil {
		c.Close()
		t.Errorf("%s: connected with a known_hosts holding another host's key", f.Hosts[0].Name)
	}

	// A ruleset loaded in h001 filters h001 only.
	rs, err := os.ReadFile(filepath.Join(f.StateDir, "rulesets", "fleet.nft"))
	if err != nil {
		t.Fatal(err)
	}
	h1, h2 := f.Hosts[0], f.Hosts[1]
	c1 := dial(t, f, h1.Addr, "root")
	runOn(t, c1, h1.Name, "nft -f -", rs)
	c1.Close()
	if out := runOn(t, dial(t, f, h1.Addr, "root"), h1.Name, "nft list chain inet filter input", nil); !strings.Contains(out, "policy drop") {
		t.Errorf("%s: ruleset not loaded: %q", h1.Name, out)
	}
	if out := runOn(t, dial(t, f, h2.Addr, "root"), h2.Name, "nft list ruleset", nil); strings.Contains(out, "policy drop") {
		t.Errorf("%s: h001's ruleset leaked here: %q", h2.Name, out)
	}
	// Closed port: h002 answers with a reset, h001 now drops silently.
	if err := dialPort(h2.Addr, 23); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("%s: tcp/23 = %v, want connection refused", h2.Name, err)
	}
	if err := dialPort(h1.Addr, 23); err == nil || errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("%s: tcp/23 = %v, want a timeout (dropped)", h1.Name, err)
	}

	// A stock shutdown in h003 runs the real rc0 scripts: the nftables K-script
	// flushes, ifdown deconfigures eth0, halt ends the PID namespace. The network
	// namespace stays (pinned), and Down still removes it. The host's capabilities
	// exclude the machine's clock.
	h3 := f.Hosts[2]
	c3 := dial(t, f, h3.Addr, "root")
	out := strings.Fields(runOn(t, c3, h3.Name, "grep ^CapBnd: /proc/1/status", nil))
	if bnd, err := strconv.ParseUint(out[len(out)-1], 16, 64); err != nil ||
		bnd&(1<<25) != 0 || bnd&(1<<17) != 0 || bnd&(1<<22) == 0 { // sys_time, sys_rawio out; sys_boot in
		t.Errorf("%s: init's bounding set %v (%v)", h3.Name, out, err)
	}
	if s, err := c3.NewSession(); err == nil {
		_ = s.Run("nft -f /etc/nftables.conf && (sleep 1; /sbin/init 0) >/dev/null 2>&1 &")
		s.Close()
	}
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		st, err := fleetlab.Status(cfg)
		if err == nil && !st.Hosts[2].Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still running 3 minutes after init 0", h3.Name)
		}
	}
	if out, err := exec.Command("ip", "netns", "exec", h3.NS, "nft", "list", "ruleset").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("%s: after the stock shutdown the ruleset is %q (%v), want flushed by rc0", h3.Name, out, err)
	}
	if out, _ := exec.Command("ip", "-n", h3.NS, "-br", "addr", "show", "eth0").Output(); strings.Contains(string(out), h3.Addr) {
		t.Errorf("%s: eth0 still configured after rc0: %s", h3.Name, out)
	}

	pidns := hostPIDNamespaces(t, cfg)
	if err := fleetlab.Down(ctx, cfg); err != nil {
		t.Fatalf("Down: %v", err)
	}
	checkNothingLeft(t, cfg, pidns)
}

// TestDownAfterUpKilled: the process running Up dies (SIGKILL) with part of the fleet
// started; Down, from the records on disk and the prefix sweep, removes everything.
func TestDownAfterUpKilled(t *testing.T) {
	cfg := testConfig(t, "hfk", 4)
	if _, err := fleetlab.Build(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperUp$", "-test.v")
	cmd.Env = append(os.Environ(), "FLEETLAB_HELPER_DIR="+cfg.StateDir,
		"FLEETLAB_HELPER_PREFIX="+cfg.Prefix, "FLEETLAB_HELPER_SLOT="+strconv.Itoa(cfg.Slot))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	booted := waitHosts(t, cfg, 3, func(h fleetlab.Host) bool { return h.InitPID > 0 })
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	t.Logf("killed Up with %d inits started; its output:\n%s", booted, out.String())
	if booted >= cfg.N {
		t.Fatalf("Up finished before it could be killed")
	}
	pidns := hostPIDNamespaces(t, cfg)
	if err := fleetlab.Down(context.Background(), cfg); err != nil {
		t.Fatalf("Down: %v", err)
	}
	checkNothingLeft(t, cfg, pidns)
}

// TestHelperUp is TestDownAfterUpKilled's victim, run in a child process.
func TestHelperUp(t *testing.T) {
	dir := os.Getenv("FLEETLAB_HELPER_DIR")
	if dir == "" {
		t.Skip("helper for TestDownAfterUpKilled")
	}
	slot, _ := strconv.Atoi(os.Getenv("FLEETLAB_HELPER_SLOT"))
	_, err := fleetlab.Up(context.Background(), fleetlab.Config{N: 10, StateDir: dir, Parallel: 1,
		Prefix: os.Getenv("FLEETLAB_HELPER_PREFIX"), Slot: slot, Logf: t.Logf})
	t.Logf("Up returned: %v", err)
}

// TestDownAfterUpCancelled: Up's context ends after a few hosts answered; Up says so
// and Down removes everything.
func TestDownAfterUpCancelled(t *testing.T) {
	cfg := testConfig(t, "hfc", 5)
	cfg.Parallel = 1
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		waitHosts(t, cfg, 3, func(h fleetlab.Host) bool { return h.TimeToSSH > 0 })
		cancel()
	}()
	f, err := fleetlab.Up(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Up = %v, want context.Canceled", err)
	}
	if f == nil || len(f.Hosts) < 3 || len(f.Hosts) >= cfg.N {
		t.Fatalf("Up interrupted: fleet %+v", f)
	}
	pidns := hostPIDNamespaces(t, cfg)
	if err := fleetlab.Down(context.Background(), cfg); err != nil {
		t.Fatalf("Down: %v", err)
	}
	checkNothingLeft(t, cfg, pidns)
}

// waitHosts polls the records until n hosts satisfy ok and returns how many do.
func waitHosts(t *testing.T, cfg fleetlab.Config, n int, ok func(fleetlab.Host) bool) int {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		if f, err := fleetlab.Status(cfg); err == nil {
			c := 0
			for _, h := range f.Hosts {
				if ok(h) {
					c++
				}
			}
			if c >= n {
				return c
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("fewer than %d hosts reached the state in 10 minutes", n)
	return 0
}

// hostPIDNamespaces returns the PID namespaces of the fleet's running hosts, from
// their inits' marker, so checkNothingLeft can look for any process still in one.
func hostPIDNamespaces(t *testing.T, cfg fleetlab.Config) map[string]bool {
	t.Helper()
	ns := map[string]bool{}
	marker := []byte("HALTFLEET_FLEET=" + cfg.Prefix + "\x00")
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if b, err := os.ReadFile("/proc/" + e.Name() + "/environ"); err == nil && bytes.Contains(b, marker) {
			if l, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil {
				ns[l] = true
			}
		}
	}
	if len(ns) == 0 {
		t.Errorf("no running host found before Down")
	}
	return ns
}

// checkNothingLeft looks for every kind of thing a fleet makes; pidns are the hosts'
// PID namespaces seen before Down.
func checkNothingLeft(t *testing.T, cfg fleetlab.Config, pidns map[string]bool) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + cfg.Prefix + `([0-9]{3}|-net)\b`)
	if out, _ := exec.Command("ip", "netns", "list").Output(); re.Match(out) {
		t.Errorf("namespaces left:\n%s", out)
	}
	if out, _ := exec.Command("ip", "-o", "link").Output(); strings.Contains(string(out), cfg.Prefix+"-ctl") {
		t.Errorf("controller link left:\n%s", out)
	}
	ctl := " 10.201." + strconv.Itoa(16*cfg.Slot) + ".1/20 "
	if out, _ := exec.Command("ip", "-o", "addr").Output(); strings.Contains(string(out), ctl) {
		t.Errorf("fleet address left in the root namespace:\n%s", out)
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), cfg.StateDir) {
		t.Errorf("mounts under %s left", cfg.StateDir)
	}
	ents, _ := os.ReadDir("/proc")
	marker := []byte("HALTFLEET_FLEET=" + cfg.Prefix + "\x00")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/environ"); err == nil && bytes.Contains(b, marker) {
			comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
			t.Errorf("process %s (%s) of the fleet left", e.Name(), strings.TrimSpace(string(comm)))
		}
		// A zombie is dead already: after the Up process was killed, its inits' parent
		// is PID 1, which reaps them when it gets to it.
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && pidns[l] && !zombie(e.Name()) {
			t.Errorf("process %s is still in a host's PID namespace %s", e.Name(), l)
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/mountinfo"); err == nil && strings.Contains(string(b), cfg.StateDir) {
			t.Errorf("process %s still sees a mount under %s", e.Name(), cfg.StateDir)
		}
	}
	if _, err := os.Stat(cfg.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir %s left (%v)", cfg.StateDir, err)
	}
	if _, err := fleetlab.Status(cfg); !errors.Is(err, fleetlab.ErrNoFleet) {
		t.Errorf("Status after Down = %v, want ErrNoFleet", err)
	}
}

func zombie(pid string) bool {
	b, _ := os.ReadFile("/proc/" + pid + "/stat")
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] == 'Z'
}

func dial(t *testing.T, f *fleetlab.Fleet, addr, user string) *ssh.Client {
	t.Helper()
	c, err := dialWith(f, addr, user, f.KnownHosts)
	if err != nil {
		t.Fatalf("ssh %s@%s: %v", user, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialWith connects with the fleet's key and strict checking against knownHosts.
func dialWith(f *fleetlab.Fleet, addr, user, knownHosts string) (*ssh.Client, error) {
	key, err := os.ReadFile(f.KeyFile)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return nil, err
	}
	hk, err := knownhosts.New(knownHosts)
	if err != nil {
		return nil, err
	}
	return ssh.Dial("tcp", net.JoinHostPort(addr, "22"), &ssh.ClientConfig{User: user,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hk, Timeout: 60 * time.Second})
}

func runOn(t *testing.T, c *ssh.Client, host, cmd string, stdin []byte) string {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatalf("%s: session: %v", host, err)
	}
	defer s.Close()
	if stdin != nil {
		s.Stdin = bytes.NewReader(stdin)
	}
	out, err := s.CombinedOutput(cmd)
	if err != nil {
		t.Errorf("%s: %s: %v: %s", host, cmd, err, out)
	}
	return string(out)
}

func dialPort(addr string, port int) error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(addr, strconv.Itoa(port)), 3*time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
