package tasks

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/internal/testenv"
	"github.com/haltfleet/haltfleet/runner"
)

// netnsRunner is the real runner.Local with every command run inside a network namespace
// the test owns, so the machine's own ruleset and sysctls are never touched.
type netnsRunner struct {
	*runner.Local
	ns string
}

func (n *netnsRunner) Exec(ctx context.Context, c runner.Cmd) (runner.Result, error) {
	c.Command = "exec ip netns exec " + runner.Quote(n.ns) + " sh -c " + runner.Quote(c.Command)
	return n.Local.Exec(ctx, c)
}

// newNetns creates a namespace and a private RunDir, both removed by Cleanup (even on
// failure), together with any dead-man timer left running.
func newNetns(t *testing.T) *netnsRunner {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "nft", "unshare", "ip", "setsid")
	ns := "hf-rs-" + nonce()[:10]
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	oldRunDir := RunDir
	RunDir = "/run/" + ns // our tests never run in parallel: RunDir is a package var
	t.Cleanup(func() {
		if b, err := os.ReadFile(RunDir + "/deadman.pid"); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
				syscall.Kill(-pid, syscall.SIGKILL)
			}
		}
		os.RemoveAll(RunDir)
		RunDir = oldRunDir
		exec.Command("ip", "netns", "del", ns).Run()
	})
	exec.Command("ip", "-n", ns, "link", "set", "lo", "up").Run()
	return &netnsRunner{Local: runner.NewLocal(runner.LocalOptions{Name: ns}), ns: ns}
}

const oldRuleset = "table inet old {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\ttcp dport 9 drop\n\t}\n}\n"

func loadRuleset(t *testing.T, r *netnsRunner, ruleset string) {
	t.Helper()
	if _, err := r.Exec(context.Background(), runner.Cmd{Command: "nft -f -", Stdin: strings.NewReader("flush ruleset\n" + ruleset)}); err != nil {
		t.Fatalf("load ruleset: %v", err)
	}
}

func testdataRuleset(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "ruleset", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustInSync(t *testing.T, r runner.Runner, ruleset, what string) {
	t.Helper()
	d, err := RulesetInSync(context.Background(), r, ruleset)
	if err != nil {
		t.Fatalf("%s: RulesetInSync: %v", what, err)
	}
	if d != "" {
		t.Fatalf("%s: live ruleset differs:\n%s", what, d)
	}
}

// timerPID reads the armed timer's pid (its process group).
func timerPID(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(RunDir + "/deadman.pid")
	if err != nil {
		t.Fatalf("no dead-man pid file while armed: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// groupGone waits up to 2s for the timer's process group to have no live (non-zombie)
// member: SIGTERM takes a moment, and reaping is up to whatever init adopted them.
func groupGone(pid int) bool {
	for i := 0; i < 40; i++ {
		if liveInGroup(pid) == 0 {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func liveInGroup(pgid int) int {
	n := 0
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces, so cut at the last ')'.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			n++
		}
	}
	return n
}

// cancelConfirm stands for "open a new SSH connection and cancel": it runs the cancel
// command in a separate command, as the CLI does over a fresh connection.
func cancelConfirm(t *testing.T, r runner.Runner, pid *int) func(context.Context) error {
	return func(ctx context.Context) error {
		*pid = timerPID(t)
		_, err := r.Exec(ctx, runner.Cmd{Command: DeadmanCancelCommand(), Sudo: true})
		return err
	}
}

func TestRulesetNetnsPlanApplyIdempotent(t *testing.T) {
	r := newNetns(t)
	ctx := context.Background()
	loadRuleset(t, r, oldRuleset)
	desired := testdataRuleset(t, "base.nft")

	plan, err := PlanRuleset(ctx, r, "fw", Facts{}, desired)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 1 || plan[0].Kind != KindRuleset {
		t.Fatalf("want one ruleset change, got %+v", plan)
	}
	ch := plan[0]
	if !strings.Contains(ch.Old, "table inet old") || ch.New != desired ||
		!strings.Contains(ch.Diff, "-table inet old {") || !strings.Contains(ch.Diff, "+table inet filter {") {
		t.Fatalf("change does not describe old → new:\n%+v", ch)
	}
	t.Logf("plan diff:\n%s", ch.Diff)

	var pid int
	start := time.Now()
	if err := ApplyRuleset(ctx, r, ch, cancelConfirm(t, r, &pid), 5*time.Second); err != nil {
		t.Fatalf("ApplyRuleset: %v", err)
	}
	t.Logf("arm + apply + confirm took %v", time.Since(start))
	if !groupGone(pid) {
		t.Fatalf("dead-man timer (process group %d) still running after confirm", pid)
	}
	if _, err := os.Stat(RunDir + "/deadman.pid"); !os.IsNotExist(err) {
		t.Errorf("deadman.pid left behind: %v", err)
	}
	mustInSync(t, r, desired, "after apply")

	again, err := PlanRuleset(ctx, r, "fw", Facts{}, desired)
	if err != nil || len(again) != 0 {
		t.Fatalf("second plan not empty: %+v %v", again, err)
	}
	// The same ruleset written another way is in sync too; a changed port is not.
	if d, err := RulesetInSync(ctx, r, testdataRuleset(t, "reordered.nft")); err != nil || d != "" {
		t.Errorf("reordered.nft should be in sync: %v\n%s", err, d)
	}
	d, err := RulesetInSync(ctx, r, testdataRuleset(t, "port.nft"))
	if err != nil || !strings.Contains(d, "-\t\ttcp dport 80 counter") || !strings.Contains(d, "+\t\ttcp dport 8080 counter") {
		t.Errorf("port.nft diff wrong (%v):\n%s", err, d)
	}
	if left, _ := filepath.Glob(RunDir + "/ruleset.*"); len(left) > 0 {
		t.Errorf("temp files left: %v", left)
	}
}

func TestRulesetNetnsInvalidChangesNothing(t *testing.T) {
	r := newNetns(t)
	ctx := context.Background()
	loadRuleset(t, r, oldRuleset)
	bad := "table inet f {\n\tchain c {\n\t\ttcp dport 99999 accept\n\t}\n}\n"

	_, err := PlanRuleset(ctx, r, "fw", Facts{}, bad)
	if !errors.Is(err, ErrRulesetInvalid) || !strings.Contains(err.Error(), "Error:") || !strings.Contains(err.Error(), "ruleset:3:") {
		t.Fatalf("want ErrRulesetInvalid with nft's message naming line 3, got %v", err)
	}
	t.Logf("plan error: %v", err)
	err = ApplyRuleset(ctx, r, Change{Kind: KindRuleset, New: bad}, func(context.Context) error {
		t.Error("confirm called for an invalid ruleset")
		return nil
	}, 3*time.Second)
	if !errors.Is(err, ErrRulesetInvalid) {
		t.Fatalf("apply: want ErrRulesetInvalid, got %v", err)
	}
	if _, err := os.Stat(RunDir + "/deadman.pid"); !os.IsNotExist(err) {
		t.Errorf("a timer was armed for an invalid ruleset")
	}
	mustInSync(t, r, oldRuleset, "after invalid ruleset")
	if left, _ := filepath.Glob(RunDir + "/ruleset.*"); len(left) > 0 {
		t.Errorf("temp files left: %v", left)
	}
}

func TestRulesetNetnsConfirmFailsRollsBack(t *testing.T) {
	r := newNetns(t)
	ctx := context.Background()
	loadRuleset(t, r, oldRuleset)
	desired := testdataRuleset(t, "base.nft")
	var pid int
	start := time.Now()
	err := ApplyRuleset(ctx, r, Change{Kind: KindRuleset, New: desired}, func(context.Context) error {
		pid = timerPID(t)
		mustInSync(t, r, desired, "before confirm") // the new ruleset was live
		return errors.New("new connection: i/o timeout")
	}, 3*time.Second)
	elapsed := time.Since(start)
	if !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "i/o timeout") {
		t.Fatalf("want ErrRolledBack wrapping the confirm error, got %v", err)
	}
	t.Logf("confirm failed → previous ruleset restored in %v (error: %v)", elapsed, err)
	if elapsed > 3*time.Second {
		t.Errorf("rollback took %v, more than the dead-man time", elapsed)
	}
	mustInSync(t, r, oldRuleset, "after rollback")
	if !groupGone(pid) {
		t.Errorf("timer process group %d still running", pid)
	}
}

func TestRulesetNetnsTimerFiresBeforeConfirm(t *testing.T) {
	r := newNetns(t)
	ctx := context.Background()
	loadRuleset(t, r, oldRuleset)
	desired := testdataRuleset(t, "base.nft")
	start := time.Now()
	var cancelCode int
	err := ApplyRuleset(ctx, r, Change{Kind: KindRuleset, New: desired}, func(ctx context.Context) error {
		<-ctx.Done() // a new connection that hangs until the deadline
		for i := 0; i < 50; i++ {
			if _, err := os.Stat(RunDir + "/deadman.fired"); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		_, err := r.Exec(context.Background(), runner.Cmd{Command: DeadmanCancelCommand(), Sudo: true})
		var ce *runner.CommandError
		if errors.As(err, &ce) {
			cancelCode = ce.ExitCode
		}
		return err
	}, 3*time.Second)
	if !errors.Is(err, ErrRolledBack) {
		t.Fatalf("want ErrRolledBack, got %v", err)
	}
	if cancelCode != 3 {
		t.Errorf("cancel after the timer fired exited %d, want 3", cancelCode)
	}
	fi, ferr := os.Stat(RunDir + "/deadman.fired")
	if ferr != nil {
		t.Fatal(ferr)
	}
	t.Logf("timer restored the ruleset %v after the start (dead-man 3s); ApplyRuleset returned after %v",
		fi.ModTime().Sub(start).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	mustInSync(t, r, oldRuleset, "after the timer fired")
}

// The controller vanishes after applying: nobody confirms, nobody waits. The timer alone
// must restore the previous ruleset, and a second run must see it pending meanwhile.
func TestRulesetNetnsControllerDies(t *testing.T) {
	r := newNetns(t)
	ctx := context.Background()
	loadRuleset(t, r, oldRuleset)
	desired := testdataRuleset(t, "base.nft")
	start := time.Now()
	arm := newSectioned()
	arm.line(armScript(3))
	if _, code, stderr, err := arm.exec(ctx, r, strings.NewReader(desired)); err != nil || code != 0 {
		t.Fatalf("arm: %v %d %s", err, code, stderr)
	}
	if _, code, stderr, err := newApply().exec(ctx, r, nil); err != nil || code != 0 {
		t.Fatalf("apply: %v %d %s", err, code, stderr)
	}
	mustInSync(t, r, desired, "right after apply")

	err := ApplyRuleset(ctx, r, Change{Kind: KindRuleset, New: desired}, func(context.Context) error { return nil }, 3*time.Second)
	if !errors.Is(err, ErrDeadmanPending) {
		t.Errorf("second run while a timer is pending: want ErrDeadmanPending, got %v", err)
	}

	var restored time.Duration
	for time.Since(start) < 8*time.Second {
		if d, err := RulesetInSync(ctx, r, oldRuleset); err == nil && d == "" {
			restored = time.Since(start)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if restored == 0 {
		t.Fatal("previous ruleset not restored within 8s of a 3s dead-man timer")
	}
	b, _ := os.ReadFile(RunDir + "/deadman.fired")
	if strings.TrimSpace(string(b)) != "rolled-back 0" {
		t.Errorf("deadman.fired = %q", b)
	}
	t.Logf("no controller: previous ruleset back %v after arming (dead-man 3s)", restored.Round(time.Millisecond))
	// The fired timer is final: a late cancel says so instead of pretending.
	if _, err := r.Exec(ctx, runner.Cmd{Command: DeadmanCancelCommand(), Sudo: true}); err == nil {
		t.Error("cancel after the timer fired succeeded")
	}
}

func TestRulesetNetnsLock(t *testing.T) {
	r := newNetns(t)
	ctx := context.Background()
	if err := Lock(ctx, r, "run-1"); err != nil {
		t.Fatal(err)
	}
	if err := Lock(ctx, r, "run-1"); err != nil {
		t.Errorf("re-taking our own lock: %v", err)
	}
	err := Lock(ctx, r, "run-2")
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "run-1") {
		t.Errorf("want ErrLocked naming run-1, got %v", err)
	}
	if err := Unlock(ctx, r, "run-2"); err != nil {
		t.Fatal(err)
	}
	if err := Lock(ctx, r, "run-2"); !errors.Is(err, ErrLocked) {
		t.Errorf("another run's unlock released the lock: %v", err)
	}
	if err := Unlock(ctx, r, "run-1"); err != nil {
		t.Fatal(err)
	}
	if err := Lock(ctx, r, "run-2"); err != nil {
		t.Errorf("after unlock: %v", err)
	}
}

// Persistence probes on this machine (read-only): the plan's Old is the real file.
func TestRulesetNetnsPersistencePlan(t *testing.T) {
	r := newNetns(t)
	ctx := context.Background()
	desired := testdataRuleset(t, "base.nft")
	f := Facts{Distro: Distro{ID: "debian"}, Init: InitSysvinit}
	plan, err := PlanRuleset(ctx, r, "fw", f, desired)
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]Change{}
	var cmds []string
	for _, c := range plan {
		byPath[c.Path] = c
		if c.Kind == KindCommand {
			cmds = append(cmds, c.Command)
		}
	}
	conf, ok := byPath["/etc/nftables.conf"]
	real, rerr := os.ReadFile("/etc/nftables.conf")
	if !ok || conf.Kind != KindFile || conf.Mode != 0o755 || (rerr == nil && conf.Old != string(real)) {
		t.Errorf("/etc/nftables.conf change wrong: %+v (real file err %v)", conf, rerr)
	}
	_, orphan := os.Stat("/etc/init.d/nftables")
	_, ours := byPath["/etc/init.d/"+InitScriptName]
	if orphan == nil && ours {
		t.Error("installs its own init script although /etc/init.d/nftables exists")
	}
	if orphan != nil && (!ours || len(cmds) != 1 || !strings.Contains(cmds[0], "update-rc.d haltfleet-nftables defaults")) {
		t.Errorf("no /etc/init.d/nftables here: want our script and its update-rc.d, got %+v", plan)
	}
	t.Logf("persistence plan here: %d changes, commands %q", len(plan)-1, cmds)
}

func TestSysctlNetns(t *testing.T) {
	r := newNetns(t)
	ctx := context.Background()
	hostFwd, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	out, err := exec.Command("ip", "netns", "exec", r.ns, "cat", "/proc/sys/net/ipv4/ip_local_port_range").Output()
	if err != nil {
		t.Fatal(err)
	}
	portRange := strings.Join(strings.Fields(string(out)), " ") // tab in /proc, space here
	want := map[string]string{"net.ipv4.ip_forward": "1", "net/ipv4/ip_local_port_range": portRange}

	plan, err := PlanSysctls(ctx, r, "fw", want)
	if err != nil {
		t.Fatal(err)
	}
	var sysctls []Change
	for _, c := range plan {
		if c.Kind == KindSysctl {
			sysctls = append(sysctls, c)
		}
	}
	if len(sysctls) != 1 || sysctls[0].Key != "net.ipv4.ip_forward" || sysctls[0].Old != "0" || sysctls[0].New != "1" {
		t.Fatalf("want only ip_forward 0→1, got %+v", plan)
	}
	if err := ApplySysctl(ctx, r, sysctls[0]); err != nil {
		t.Fatal(err)
	}
	plan, err = PlanSysctls(ctx, r, "fw", want)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range plan {
		if c.Kind == KindSysctl {
			t.Errorf("still differs after apply: %+v", c)
		}
	}
	if after, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(after) != string(hostFwd) {
		t.Errorf("the machine's own ip_forward changed: %q → %q", hostFwd, after)
	}
	if _, err := PlanSysctls(ctx, r, "fw", map[string]string{"net.ipv4.no_such_key": "1"}); err == nil ||
		!strings.Contains(err.Error(), "does not exist") {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := PlanSysctls(ctx, r, "fw", map[string]string{"net.ipv4.ip_forward; touch /tmp/pwned": "1"}); err == nil {
		t.Error("hostile key accepted")
	}
	if err := ApplySysctl(ctx, r, Change{Kind: KindSysctl, Key: "net.ipv4.ip_forward", New: "1\nkernel.x=1"}); err == nil {
		t.Error("hostile value accepted")
	}
}

func TestApplyFileLocal(t *testing.T) {
	testenv.NeedRoot(t)
	r := runner.NewLocal(runner.LocalOptions{Name: "local"})
	p := filepath.Join(t.TempDir(), "nftables.conf")
	if err := ApplyFile(context.Background(), r, Change{Stage: "persist", Kind: KindFile, Path: p, New: "x\n", Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("mode: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(p); string(b) != "x\n" {
		t.Errorf("content %q", b)
	}
	if err := ApplyRemove(context.Background(), r, Change{Stage: "sysctl", Kind: KindRemove, Path: p}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Error("not removed")
	}
	if err := ApplyFile(context.Background(), r, Change{Stage: "persist", Kind: KindFile, Path: "/etc/../tmp/x"}); err == nil {
		t.Error("unclean path accepted")
	}
}
