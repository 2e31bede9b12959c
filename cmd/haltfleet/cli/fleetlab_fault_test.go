package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The faults, each on real sysvinit+sshd hosts of a fleet lab: a host's ruleset is
// read from outside (ip netns exec) and its /run through /proc/PID/root, so the checks do
// not depend on the SSH path the fault breaks.

// faultFleet is a fleet lab with the built CLI and the listing of a reference ruleset.
type faultFleet struct {
	*labFleet
	bin string
}

// fzInventory writes an inventory of the given hosts (indexes into lf.Hosts): root login,
// no halt, ruleset, dead-man bound; extra adds YAML lines under a host.
func (ff *faultFleet) fzInventory(t *testing.T, name, ruleset string, deadman int, hosts []int, extra map[int]string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "all:\n  vars:\n    ansible_user: root\n    ansible_ssh_private_key_file: %s\n    haltfleet_halt: false\n"+
		"    haltfleet_ruleset: %s\n    haltfleet_deadman_seconds: %d\n  hosts:\n", ff.KeyFile, ruleset, deadman)
	for _, i := range hosts {
		fmt.Fprintf(&b, "    %s:\n      ansible_host: %s\n%s", ff.Hosts[i].Name, ff.Hosts[i].Addr, extra[i])
	}
	dir := filepath.Join(ff.dir, strings.TrimSuffix(name, ".yml"))
	os.MkdirAll(dir, 0o755)
	p := filepath.Join(dir, "hosts.yml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// live is host i's ruleset as the kernel has it, listed from outside without state.
func (ff *faultFleet) live(t *testing.T, i int) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ff.Hosts[i].NS, "nft", "-s", "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("%s: nft list: %v %s", ff.Hosts[i].Name, err, out)
	}
	return string(out)
}

// reference is how ruleset file path lists once loaded, in a throwaway namespace.
func reference(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("unshare", "-n", "sh", "-c", `nft -f "$1" && nft -s list ruleset`, "sh", path).CombinedOutput()
	if err != nil {
		t.Fatalf("reference listing of %s: %v %s", path, err, out)
	}
	return string(out)
}

// hostSh runs a shell script in every namespace of host i.
func (ff *faultFleet) hostSh(i int, script string) (string, error) {
	out, err := exec.Command("nsenter", "-t", strconv.Itoa(ff.Hosts[i].InitPID), "-a", "--", "sh", "-c", script).CombinedOutput()
	return string(out), err
}

// runDir is path under host i's /run/haltfleet, seen from the controller.
func (ff *faultFleet) runDir(i int, path string) string {
	return filepath.Join("/proc", strconv.Itoa(ff.Hosts[i].InitPID), "root", "run", "haltfleet", path)
}

// quiescent fails unless host i has no live dead-man timer and no haltfleet lock.
func (ff *faultFleet) quiescent(t *testing.T, i int) {
	t.Helper()
	out, _ := ff.hostSh(i, `p=$(cat /run/haltfleet/deadman.pid 2>/dev/null) && kill -0 "$p" 2>/dev/null && echo "timer $p alive"
[ -d /run/haltfleet/lock ] && echo "locked by $(cat /run/haltfleet/lock/owner)"; true`)
	if s := strings.TrimSpace(out); s != "" {
		t.Errorf("%s is not quiescent: %s", ff.Hosts[i].Name, s)
	}
}

// cliRun is the built haltfleet running in the background.
type cliRun struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
	code   int
}

// startCLI starts the built haltfleet with args; it is killed at cleanup if still running.
func (ff *faultFleet) startCLI(t *testing.T, args ...string) *cliRun {
	t.Helper()
	r := &cliRun{cmd: exec.Command(ff.bin, args...), out: &syncBuffer{}, exited: make(chan struct{})}
	r.cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(ff.dir, "state"))
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.cmd.Wait()
		r.code = r.cmd.ProcessState.ExitCode()
		close(r.exited)
	}()
	t.Cleanup(func() { r.cmd.Process.Kill(); <-r.exited })
	return r
}

// wait returns the exit code, failing the test if the run lasts longer than d.
func (r *cliRun) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-r.exited:
		return r.code
	case <-time.After(d):
		t.Fatalf("haltfleet still running after %s:\n%s", d, r.out.String())
	}
	return -1
}

// waitFor polls cond every 10ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no %s within %s", what, d)
		}
	}
}

// watchStates samples host i's ruleset until stop closes; each sample must be exactly
// one of the allowed listings. It returns the names of the states seen, in order.
func (ff *faultFleet) watchStates(t *testing.T, i int, allowed map[string]string, stop <-chan struct{}) <-chan []string {
	seen := make(chan []string, 1)
	go func() {
		var states []string
		for {
			out, err := exec.Command("ip", "netns", "exec", ff.Hosts[i].NS, "nft", "-s", "list", "ruleset").CombinedOutput()
			name := "unreadable: " + fmt.Sprint(err)
			if err == nil {
				name = "BETWEEN"
				for n, want := range allowed {
					if string(out) == want {
						name = n
					}
				}
				if name == "BETWEEN" {
					t.Errorf("%s: a ruleset that is neither of %v:\n%s", ff.Hosts[i].Name, keys(allowed), out)
				}
			}
			if len(states) == 0 || states[len(states)-1] != name {
				states = append(states, name)
			}
			select {
			case <-stop:
				seen <- states
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return seen
}

func keys(m map[string]string) []string { return sortedKeys(m) }

// syncBuffer is a bytes.Buffer safe for a writer process and a reading test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// hasEvent reports whether the events file has an event of host at stage with status.
func hasEvent(t *testing.T, path, host, stage, status string) bool {
	if _, err := os.Stat(path); err != nil {
		return false
	}
	for _, e := range readEvents(t, path) {
		if e.Host == host && e.Stage == stage && e.Status == status {
			return true
		}
	}
	return false
}

// agreesWithHost checks that what the run reported matches the state host i ended in.
func agreesWithHost(t *testing.T, code int, out, final, host string) {
	t.Helper()
	switch final {
	case "old":
		if code == exitOK || !(strings.Contains(out, "rolled back") || strings.Contains(out, "rollback not confirmed") || strings.Contains(out, "arm dead-man timer")) {
			t.Errorf("%s ended on the previous ruleset but the run (exit %d) did not report a rollback or a failed arm:\n%s", host, code, out)
		}
	case "new":
		if strings.Contains(out, "rolled back") {
			t.Errorf("%s ended on the new ruleset but the run reported a rollback:\n%s", host, out)
		}
	}
}

func TestFaultsOnFleetLab(t *testing.T) {
	lf := startFleet(t, 5, "hfz", 7)
	ff := &faultFleet{labFleet: lf, bin: filepath.Join(lf.dir, "haltfleet")}
	t.Setenv("XDG_STATE_HOME", filepath.Join(lf.dir, "state"))
	if b, err := exec.Command("go", "build", "-o", ff.bin, "github.com/haltfleet/haltfleet/cmd/haltfleet").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v %s", err, b)
	}
	common := []string{"-F", "none", "--known-hosts", lf.KnownHosts, "--yes"}
	all := []int{0, 1, 2, 3, 4}
	base, next := lf.ruleset(t, "hf-fault-base"), lf.ruleset(t, "hf-fault-next")
	refBase, refNext := reference(t, base), reference(t, next)
	// lockout lets established SSH in but no new connection: the confirm cannot come.
	lockout := filepath.Join(lf.dir, "lockout.nft")
	os.WriteFile(lockout, []byte("flush ruleset\ntable inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n"+
		"\t\tct state established,related accept\n\t\tiif \"lo\" accept\n\t}\n}\n"), 0o644)
	journal := func(name string) []string { return []string{"--journal", filepath.Join(lf.dir, name+".journal")} }

	inv := ff.fzInventory(t, "base", base, 5, all, nil)
	if code, out := haltfleet(t, append(append([]string{"up", "-i", inv}, journal("base")...), common...)...); code != exitOK {
		t.Fatalf("baseline run: exit %d\n%s", code, out)
	}
	for i := range all {
		if ff.live(t, i) != refBase {
			t.Fatalf("%s: baseline ruleset not as loaded in a clean namespace:\n%s\nwant:\n%s", lf.Hosts[i].Name, ff.live(t, i), refBase)
		}
	}

	t.Run("auth failure", func(t *testing.T) {
		key := filepath.Join(t.TempDir(), "other")
		if b, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v %s", err, b)
		}
		inv := ff.fzInventory(t, "auth", next, 5, []int{0}, map[int]string{0: "      ansible_ssh_private_key_file: " + key + "\n"})
		code, out := haltfleet(t, append(append([]string{"up", "-i", inv}, journal("auth")...), common...)...)
		if code != exitError || !strings.Contains(out, "authentication failed") || !strings.Contains(out, "unreachable=1") {
			t.Errorf("wrong key: exit %d, want 1 with authentication failed, unreachable\n%s", code, out)
		}
		if ff.live(t, 0) != refBase {
			t.Errorf("ruleset changed after an auth failure")
		}
	})

	t.Run("nft missing", func(t *testing.T) {
		if out, err := ff.hostSh(0, "mv /usr/sbin/nft /usr/sbin/nft.hidden"); err != nil {
			t.Fatalf("hide nft: %v %s", err, out)
		}
		t.Cleanup(func() { ff.hostSh(0, "mv /usr/sbin/nft.hidden /usr/sbin/nft") })
		before, _ := ff.hostSh(0, "cat /etc/nftables.conf; ls -l --time-style=+%s /etc/nftables.conf")
		inv := ff.fzInventory(t, "nonft", next, 5, []int{0}, nil)
		code, out := haltfleet(t, append(append([]string{"up", "-i", inv}, journal("nonft")...), common...)...)
		t.Logf("nft missing:\n%s", out)
		if code != exitError || !strings.Contains(out, "nft not found") || !strings.Contains(out, "failed=1") {
			t.Errorf("nft missing: exit %d, want 1 naming nft not found", code)
		}
		after, _ := ff.hostSh(0, "cat /etc/nftables.conf; ls -l --time-style=+%s /etc/nftables.conf")
		if ff.live(t, 0) != refBase || before != after {
			t.Errorf("a host without nft was changed (ruleset or /etc/nftables.conf)")
		}
		ff.quiescent(t, 0)
	})

	t.Run("full disk", func(t *testing.T) {
		// The host's /run (tmpfs, where haltfleet keeps its lock, timer and temp files)
		// shrunk to what it uses plus 64 KiB, then filled to the last block.
		orig, err := ff.hostSh(1, `sed -n 's|^tmpfs /run tmpfs .*size=\([0-9]*k\).*|\1|p' /proc/mounts | tail -1`)
		orig = strings.TrimSpace(orig)
		if err != nil || orig == "" {
			t.Fatalf("size of the host's /run: %v %q", err, orig)
		}
		if out, err := ff.hostSh(1, `used=$(df -k --output=used /run | tail -1); mount -o remount,size=$((used+64))k /run &&
			{ dd if=/dev/zero of=/run/zz-fill bs=4k 2>/dev/null; true; }; df -k /run | tail -1`); err != nil {
			t.Fatalf("fill /run: %v %s", err, out)
		} else {
			t.Logf("host /run: %s", strings.TrimSpace(out))
		}
		t.Cleanup(func() { ff.hostSh(1, "rm -f /run/zz-fill; mount -o remount,size="+orig+" /run") })
		inv := ff.fzInventory(t, "full", next, 5, []int{1}, nil)
		code, out := haltfleet(t, append(append([]string{"up", "-i", inv}, journal("full")...), common...)...)
		t.Logf("full /run:\n%s", out)
		if code != exitError || !strings.Contains(out, "No space left on device") {
			t.Errorf("full /run: exit %d, want 1 with No space left on device", code)
		}
		if ff.live(t, 1) != refBase {
			t.Errorf("ruleset changed on a host whose /run is full")
		}
		ff.quiescent(t, 1)
		// Space back: a rerun converges (no stale lock left behind by the failed run).
		ff.hostSh(1, "rm -f /run/zz-fill")
		if code, out := haltfleet(t, append(append([]string{"up", "-i", inv}, journal("full")...), common...)...); code != exitOK {
			t.Errorf("rerun after freeing /run: exit %d\n%s", code, out)
		}
		if ff.live(t, 1) != refNext {
			t.Errorf("rerun after freeing /run did not apply the ruleset")
		}
	})

	t.Run("unreachable host", func(t *testing.T) {
		inv := ff.fzInventory(t, "ghost", next, 5, []int{2}, nil)
		ghost := "    ghost:\n      ansible_host: " + strings.Join(strings.Split(lf.Hosts[0].Addr, ".")[:2], ".") + fmt.Sprintf(".%d.250\n", 16*7+15)
		b, _ := os.ReadFile(inv)
		os.WriteFile(inv, append(b, ghost...), 0o644)
		code, out := haltfleet(t, append(append([]string{"up", "-i", inv, "--timeout", "3s", "--max-fail", "1"}, journal("ghost")...), common...)...)
		t.Logf("unreachable:\n%s", out)
		if code != exitError || !strings.Contains(out, "changed=1") || !strings.Contains(out, "unreachable=1") {
			t.Errorf("one unreachable host: exit %d, want 1 with changed=1 unreachable=1", code)
		}
		if ff.live(t, 2) != refNext {
			t.Errorf("the reachable host did not get its ruleset")
		}
	})

	t.Run("two runs at once", func(t *testing.T) {
		// Run A holds h003's lock through two UDP probes of a silent address (3 tries × 2s each).
		silent := strings.Join(strings.Split(lf.Hosts[0].Addr, ".")[:2], ".") + fmt.Sprintf(".%d.251", 16*7+15)
		probes := fmt.Sprintf("      haltfleet_probes:\n        - {from: controller, to: \"%s:9\", proto: udp, expect: closed}\n"+
			"        - {from: controller, to: \"%s:10\", proto: udp, expect: closed}\n", silent, silent)
		invA := ff.fzInventory(t, "runA", base, 5, []int{2}, map[int]string{2: probes})
		invB := ff.fzInventory(t, "runB", next, 5, []int{2}, nil)
		evA := filepath.Join(lf.dir, "runA.ndjson")
		runA := ff.startCLI(t, append(append([]string{"up", "-i", invA, "--events", evA}, journal("runA")...), common...)...)
		waitFor(t, time.Minute, "verify of run A", func() bool { return hasEvent(t, evA, lf.Hosts[2].Name, "verify", "ok") })
		evB := filepath.Join(lf.dir, "runB.ndjson")
		code, out := haltfleet(t, append(append([]string{"up", "-i", invB, "--events", evB}, journal("runB")...), common...)...)
		t.Logf("run B while A holds the host:\n%s", out)
		if code != exitError || !strings.Contains(out, "host locked by another haltfleet run") {
			t.Errorf("second run: exit %d, want 1 refused by the host lock", code)
		}
		for _, e := range readEvents(t, evB) {
			if e.Stage == "apply" || e.Stage == "facts" {
				t.Errorf("the refused run went on to %s: %s", e.Stage, e.Message)
			}
		}
		if codeA := runA.wait(t, 2*time.Minute); codeA != exitOK {
			t.Errorf("run A: exit %d\n%s", codeA, runA.out)
		}
		if ff.live(t, 2) != refBase {
			t.Errorf("h003 does not hold run A's ruleset")
		}
		ff.quiescent(t, 2)
	})

	t.Run("ruleset locks the controller out", func(t *testing.T) {
		const deadman = 6
		inv := ff.fzInventory(t, "lockout", lockout, deadman, []int{2}, nil)
		start := time.Now()
		code, out := haltfleet(t, append(append([]string{"up", "-i", inv}, journal("lockout")...), common...)...)
		took := time.Since(start)
		t.Logf("lockout (%s):\n%s", took.Round(time.Millisecond), out)
		if code != exitError || !strings.Contains(out, "ruleset rolled back: the previous ruleset was restored") {
			t.Errorf("lockout: exit %d, want 1 reporting the rollback", code)
		}
		if ff.live(t, 2) != refBase {
			t.Errorf("the previous ruleset is not back:\n%s", ff.live(t, 2))
		}
		// Bound: the dead-man time plus the connect/handshake slack of the run itself.
		if took > deadman*time.Second+30*time.Second {
			t.Errorf("lockout run took %s, beyond dead-man %ds + 30s", took, deadman)
		}
		ff.quiescent(t, 2)
	})

	// cutDuring starts an up of next on host i and calls fault once its dead-man timer is
	// armed; it checks the host only ever holds the previous or the new ruleset, that it
	// ends in one of them, and that the run said which.
	cutDuring := func(t *testing.T, i int, fault, heal func(t *testing.T)) (final string) {
		const deadman = 6
		prev := ff.live(t, i)
		inv := ff.fzInventory(t, "cut-"+lf.Hosts[i].Name+"-"+strconv.Itoa(time.Now().Nanosecond()), next, deadman, []int{i}, nil)
		os.Remove(ff.runDir(i, "deadman.pid"))
		run := ff.startCLI(t, append(append([]string{"up", "-i", inv}, journal("cut-"+lf.Hosts[i].Name)...), common...)...)
		waitFor(t, time.Minute, "armed dead-man timer", func() bool {
			_, err := os.Stat(ff.runDir(i, "deadman.pid"))
			return err == nil
		})
		stop := make(chan struct{})
		seen := ff.watchStates(t, i, map[string]string{"old": prev, "new": refNext}, stop)
		fault(t)
		time.Sleep((deadman + 3) * time.Second) // past the timer, while the fault lasts
		heal(t)
		code := run.wait(t, 2*time.Minute)
		close(stop)
		states := <-seen
		final = states[len(states)-1]
		t.Logf("%s: states seen %v; run exit %d:\n%s", lf.Hosts[i].Name, states, code, run.out)
		if final != "old" && final != "new" {
			t.Errorf("%s ended in %q", lf.Hosts[i].Name, final)
		}
		agreesWithHost(t, code, run.out.String(), final, lf.Hosts[i].Name)
		// Whatever happened, nothing is left armed (a lock of the failed run may remain:
		// the rerun below takes it over).
		out2, _ := ff.hostSh(i, `p=$(cat /run/haltfleet/deadman.pid 2>/dev/null) && kill -0 "$p" 2>/dev/null && echo alive; true`)
		if strings.Contains(out2, "alive") {
			t.Errorf("dead-man timer still alive after the run")
		}
		// A rerun of the same inventory converges.
		code, o := haltfleet(t, append(append([]string{"up", "-i", inv}, journal("cut-"+lf.Hosts[i].Name)...), common...)...)
		if code != exitOK || ff.live(t, i) != refNext {
			t.Errorf("rerun after the fault: exit %d\n%s", code, o)
		}
		ff.quiescent(t, i)
		return final
	}

	link := []string{"-n", lf.Prefix + "-net", "link", "set", lf.Hosts[3].Name}
	linkDown := func(t *testing.T) {
		if b, err := exec.Command("ip", append(link, "down")...).CombinedOutput(); err != nil {
			t.Fatalf("link down: %v %s", err, b)
		}
		t.Cleanup(func() { exec.Command("ip", append(link, "up")...).Run() })
	}
	linkUp := func(t *testing.T) {
		if b, err := exec.Command("ip", append(link, "up")...).CombinedOutput(); err != nil {
			t.Fatalf("link up: %v %s", err, b)
		}
	}
	// The link goes down once the new ruleset is live: the confirm cannot come, the timer
	// must restore, the run must say so.
	t.Run("link cut mid-apply", func(t *testing.T) {
		// Usually "old"; "new" when the confirm got through before the cut (then the run
		// must not claim a rollback: cutDuring checks the report against the host).
		final := cutDuring(t, 3, func(t *testing.T) {
			waitFor(t, 30*time.Second, "the new ruleset live", func() bool { return ff.live(t, 3) == refNext })
			linkDown(t)
		}, linkUp)
		t.Logf("link cut after the apply: the host ended on the %s ruleset", final)
	})

	// The link goes down as soon as the timer is armed: the arm's answer, and with it the
	// apply, are held up until the link is back, past the timer's deadline.
	t.Run("link cut while arming", func(t *testing.T) {
		back := ff.fzInventory(t, "cut-back", base, 5, []int{3}, nil)
		if code, out := haltfleet(t, append(append([]string{"up", "-i", back}, journal("cut-back")...), common...)...); code != exitOK {
			t.Fatalf("back to the base ruleset: exit %d\n%s", code, out)
		}
		cutDuring(t, 3, linkDown, linkUp)
	})

	// The session dies while the timer is being armed, then (second run) once the new
	// ruleset is live and the confirm is under way.
	t.Run("connection reset mid-command", func(t *testing.T) {
		kill := func(t *testing.T) {
			killed := killSessions(t, lf.Hosts[4].InitPID)
			t.Logf("killed sshd session processes %v", killed)
			if len(killed) == 0 {
				t.Fatal("no sshd session to kill")
			}
		}
		cutDuring(t, 4, kill, func(t *testing.T) {})
		prevInv := ff.fzInventory(t, "reset-back", base, 5, []int{4}, nil)
		if code, out := haltfleet(t, append(append([]string{"up", "-i", prevInv}, journal("reset-back")...), common...)...); code != exitOK {
			t.Fatalf("back to the base ruleset: exit %d\n%s", code, out)
		}
		cutDuring(t, 4, func(t *testing.T) {
			waitFor(t, 30*time.Second, "the new ruleset live", func() bool { return ff.live(t, 4) == refNext })
			kill(t)
		}, func(t *testing.T) {})
	})

	t.Run("interrupt during a wave", func(t *testing.T) {
		third := lf.ruleset(t, "hf-fault-third")
		refThird := reference(t, third)
		before := make([]string, len(all))
		for i := range all {
			before[i] = ff.live(t, i)
		}
		inv := ff.fzInventory(t, "interrupt", third, 5, all, nil)
		ev := filepath.Join(lf.dir, "interrupt.ndjson")
		run := ff.startCLI(t, append(append([]string{"up", "-i", inv, "--forks", "2", "--events", ev}, journal("interrupt")...), common...)...)
		waitFor(t, time.Minute, "a host in apply", func() bool {
			for _, h := range lf.Hosts {
				if hasEvent(t, ev, h.Name, "apply", "start") {
					return true
				}
			}
			return false
		})
		run.cmd.Process.Signal(os.Interrupt)
		code := run.wait(t, 2*time.Minute)
		out := run.out.String()
		t.Logf("interrupted run, exit %d:\n%s", code, out)
		if code != exitError || !strings.Contains(out, "rollout stopped: interrupted") {
			t.Errorf("interrupt: exit %d, want 1 with rollout stopped: interrupted", code)
		}
		started := 0
		for i, h := range lf.Hosts {
			touched := false
			for _, e := range readEvents(t, ev) {
				touched = touched || e.Host == h.Name
			}
			live := ff.live(t, i)
			switch {
			case touched && live != refThird:
				t.Errorf("%s was in flight at the interrupt but did not finish its ruleset", h.Name)
			case !touched && live != before[i]:
				t.Errorf("%s was not started but changed", h.Name)
			}
			if touched {
				started++
			}
			ff.quiescent(t, i)
		}
		if started == 0 || started == len(all) {
			t.Errorf("%d of %d hosts started: the interrupt came at the wrong time", started, len(all))
		}
	})

	// A second Ctrl-C aborts the hosts in flight: each must still end on its previous or
	// its new ruleset, with no timer left running and a report that matches.
	t.Run("second interrupt aborts in flight", func(t *testing.T) {
		fourth := lf.ruleset(t, "hf-fault-fourth")
		refFourth := reference(t, fourth)
		hosts := []int{0, 1}
		before := map[int]string{}
		for _, i := range hosts {
			before[i] = ff.live(t, i)
			os.Remove(ff.runDir(i, "deadman.pid"))
		}
		inv := ff.fzInventory(t, "abort", fourth, 5, hosts, nil)
		ev := filepath.Join(lf.dir, "abort.ndjson")
		run := ff.startCLI(t, append(append([]string{"up", "-i", inv, "--events", ev}, journal("abort")...), common...)...)
		waitFor(t, time.Minute, "an armed timer", func() bool {
			for _, i := range hosts {
				if _, err := os.Stat(ff.runDir(i, "deadman.pid")); err == nil {
					return true
				}
			}
			return false
		})
		run.cmd.Process.Signal(os.Interrupt)
		time.Sleep(100 * time.Millisecond)
		run.cmd.Process.Signal(os.Interrupt)
		code := run.wait(t, 2*time.Minute)
		out := run.out.String()
		t.Logf("aborted run, exit %d:\n%s", code, out)
		if code != exitError || !strings.Contains(out, "aborting the hosts in flight") {
			t.Errorf("abort: exit %d, want 1 after aborting", code)
		}
		time.Sleep(6 * time.Second) // past any timer the abort left armed
		for _, i := range hosts {
			live := ff.live(t, i)
			final := map[bool]string{true: "old", false: "new"}[live == before[i]]
			if live != before[i] && live != refFourth {
				t.Errorf("%s ended between its previous and its new ruleset:\n%s", lf.Hosts[i].Name, live)
			}
			t.Logf("%s ended on its %s ruleset", lf.Hosts[i].Name, final)
			hostOut := ""
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, lf.Hosts[i].Name) {
					hostOut += line + "\n"
				}
			}
			if final == "new" && strings.Contains(hostOut, "rolled back") {
				t.Errorf("%s is on the new ruleset but the run reported a rollback", lf.Hosts[i].Name)
			}
			out2, _ := ff.hostSh(i, `p=$(cat /run/haltfleet/deadman.pid 2>/dev/null) && kill -0 "$p" 2>/dev/null && echo alive; true`)
			if strings.Contains(out2, "alive") {
				t.Errorf("%s: dead-man timer still alive after the abort", lf.Hosts[i].Name)
			}
		}
	})

	hostileOnFleet(t, ff, common, journal)
}

// killSessions SIGKILLs the per-connection sshd processes of the host whose init is
// initPID (sshd processes in its PID namespace other than the listener), by PID.
func killSessions(t *testing.T, initPID int) []int {
	t.Helper()
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", initPID))
	if err != nil {
		t.Fatal(err)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	var killed []int
	for _, p := range procs {
		pid, _ := strconv.Atoi(filepath.Base(p))
		if l, _ := os.Readlink(p + "/ns/pid"); l != ns {
			continue
		}
		comm, _ := os.ReadFile(p + "/comm")
		if strings.TrimSpace(string(comm)) != "sshd" {
			continue
		}
		status, _ := os.ReadFile(p + "/status")
		ppid := -1
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "PPid:"); ok {
				ppid, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if ppid == initPID {
			continue // the listener
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed = append(killed, pid)
		}
	}
	return killed
}
