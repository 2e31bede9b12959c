package tasks

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/haltfleet/haltfleet/inventory"
	"github.com/haltfleet/haltfleet/runner"
)

// countingRunner counts round trips: every Exec, Upload and Download is one.
type countingRunner struct {
	runner.Runner
	mu                      sync.Mutex
	execs, uploads, downlds int
	scripts                 []string
}

func (c *countingRunner) Exec(ctx context.Context, cmd runner.Cmd) (runner.Result, error) {
	c.mu.Lock()
	c.execs++
	c.scripts = append(c.scripts, cmd.Command)
	c.mu.Unlock()
	return c.Runner.Exec(ctx, cmd)
}

func (c *countingRunner) Upload(ctx context.Context, p string, content io.Reader, mode fs.FileMode, sudo bool) error {
	c.mu.Lock()
	c.uploads++
	c.mu.Unlock()
	return c.Runner.Upload(ctx, p, content, mode, sudo)
}

func (c *countingRunner) Download(ctx context.Context, p string, sudo bool) ([]byte, error) {
	c.mu.Lock()
	c.downlds++
	c.mu.Unlock()
	return c.Runner.Download(ctx, p, sudo)
}

func (c *countingRunner) trips() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.execs + c.uploads + c.downlds
}

// innerCommands are the commands the fake ran, without Apply's batch scripts themselves.
func innerCommands(h *fakeHost) []string {
	var out []string
	for _, c := range h.commands() {
		if !strings.HasPrefix(c, "M=HFAPPLY-") {
			out = append(out, c)
		}
	}
	return out
}

func TestApplyDispatchAndStop(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost("fw1")
	h.respond = func(c string) (runner.Result, error, bool) {
		if c == "boom" {
			return runner.Result{ExitCode: 3}, &runner.CommandError{Host: "fw1", Command: c, ExitCode: 3, Stderr: "boom failed"}, true
		}
		return runner.Result{}, nil, false
	}
	changes := []Change{
		{Host: "fw1", Stage: "arm", Kind: KindFile, Path: "/etc/default/halt", New: "X=1\n", Mode: 0o644, Summary: "file"},
		{Host: "fw1", Stage: "arm", Kind: KindFile, Path: RunitIdle, Key: idleKeyPrefix + "amd64", Mode: 0o755, Summary: "idle"},
		{Host: "fw1", Stage: "arm", Kind: KindRemove, Path: "/run/systemd/system/x.d/haltfleet.conf", Summary: "remove"},
		{Host: "fw1", Stage: "arm", Kind: KindCommand, Command: "systemctl daemon-reload", Summary: "reload"},
		{Host: "fw1", Stage: "halt", Kind: KindHalt, Command: "systemctl --no-block halt", Summary: "halt is not Apply's"},
		{Host: "fw1", Stage: "arm", Kind: KindCommand, Command: "boom", Summary: "fails"},
		{Host: "fw1", Stage: "arm", Kind: KindCommand, Command: "never-run", Summary: "after the failure"},
	}
	var applied []string
	cr := &countingRunner{Runner: h}
	err := Apply(ctx, cr, changes, ApplyEnv{OnChange: func(c Change) { applied = append(applied, c.Summary) }})
	if err == nil {
		t.Fatal("no error from a failing change")
	}
	var ce *runner.CommandError
	if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "fw1: arm: fails: ") || ce.ExitCode != 3 || !strings.Contains(err.Error(), "boom failed") {
		t.Errorf("error lacks host/stage/exit/stderr or does not unwrap: %v", err)
	}
	if got := strings.Join(applied, ","); got != "file,idle,remove,reload,halt is not Apply's" {
		t.Errorf("applied %s", got)
	}
	bin, _ := idleBinary("amd64")
	if h.files[RunitIdle] != string(bin) || h.modes[RunitIdle] != 0o755 {
		t.Error("idle binary not uploaded byte-exact with mode 0755")
	}
	if h.files["/etc/default/halt"] != "X=1\n" {
		t.Error("file change not written")
	}
	for _, c := range innerCommands(h) {
		if strings.Contains(c, "never-run") || strings.Contains(c, "no-block halt") {
			t.Errorf("ran %q", c)
		}
	}
	if cr.trips() != 1 {
		t.Errorf("%d round trips for one batch, want 1", cr.trips())
	}
}

// TestApplyRulesetSplitsBatches: a ruleset is its own step at its position, so the
// changes before it reach the host in one trip and those after it in another.
func TestApplyRulesetSplitsBatches(t *testing.T) {
	h := newFakeHost("fw1")
	var order []string
	err := Apply(context.Background(), h, []Change{
		{Host: "fw1", Stage: "sysctl", Kind: KindSysctl, Key: "net.ipv4.ip_forward", New: "1", Summary: "fwd"},
		{Host: "fw1", Stage: "ruleset", Kind: KindRuleset, New: "table inet t {}\n", Summary: "ruleset"},
		{Host: "fw1", Stage: "persist", Kind: KindFile, Path: "/etc/nftables.conf", New: "x\n", Summary: "persist"},
	}, ApplyEnv{Confirm: func(context.Context) error { return nil }, OnChange: func(c Change) { order = append(order, c.Summary) }})
	if err == nil {
		t.Fatal("the fake does not run rulesets; want an error from the ruleset step")
	}
	if !strings.HasPrefix(err.Error(), "fw1: ruleset: ") {
		t.Errorf("error not from the ruleset step: %v", err)
	}
	if strings.Join(order, ",") != "fwd" || h.sections["sysctl net.ipv4.ip_forward"] != "1\n" {
		t.Errorf("before the ruleset: applied %q, sysctl %q", order, h.sections["sysctl net.ipv4.ip_forward"])
	}
	if _, ok := h.files["/etc/nftables.conf"]; ok {
		t.Error("the change after a failed ruleset was made")
	}
	cmds := h.commands()
	if len(cmds) < 2 || !strings.HasPrefix(cmds[0], "M=HFAPPLY-") || strings.Contains(cmds[0], "nftables.conf") {
		t.Errorf("first trip is not a batch of the changes before the ruleset: %q", cmds)
	}
}

func TestApplyRulesetNeedsConfirm(t *testing.T) {
	h := newFakeHost("fw1")
	err := Apply(context.Background(), h, []Change{
		{Host: "fw1", Stage: "persist", Kind: KindFile, Path: "/etc/nftables.conf", New: "x\n", Summary: "persist"},
		{Host: "fw1", Stage: "ruleset", Kind: KindRuleset, Summary: "ruleset"},
	}, ApplyEnv{})
	if err == nil || !strings.Contains(err.Error(), "dead-man") || !strings.HasPrefix(err.Error(), "fw1: ruleset: ") {
		t.Fatalf("got %v", err)
	}
	if len(h.commands()) != 0 {
		t.Errorf("touched the host: %q", h.commands())
	}
}

// TestApplyRefusesBeforeTouching: one bad change anywhere in the plan and nothing runs.
func TestApplyRefusesBeforeTouching(t *testing.T) {
	good := Change{Host: "fw1", Stage: "persist", Kind: KindFile, Path: "/etc/nftables.conf", New: "x\n", Summary: "good"}
	for _, bad := range []Change{
		{Kind: KindFile, Path: "/etc/../shadow", Summary: "dotdot"},
		{Kind: KindFile, Path: "etc/relative", Summary: "relative"},
		{Kind: KindRemove, Path: "/", Summary: "root"},
		{Kind: KindSysctl, Key: "-a", New: "1", Summary: "option key"},
		{Kind: KindSysctl, Key: "net.ipv4.ip_forward", New: "1\nrm -rf /", Summary: "two lines"},
		{Kind: KindFile, Path: RunitIdle, Key: idleKeyPrefix + "mips", Summary: "no idle for mips"},
		{Kind: "bogus", Summary: "unknown kind"},
	} {
		bad.Host, bad.Stage = "fw1", "arm"
		h := newFakeHost("fw1")
		var applied []Change
		err := Apply(context.Background(), h, []Change{good, bad}, ApplyEnv{OnChange: func(c Change) { applied = append(applied, c) }})
		if err == nil || !strings.HasPrefix(err.Error(), "fw1: arm: "+bad.Summary+": ") {
			t.Errorf("%s: got %v", bad.Summary, err)
		}
		if len(h.commands()) != 0 || len(applied) != 0 || len(h.files) != 0 {
			t.Errorf("%s: touched the host: %q, applied %d", bad.Summary, h.commands(), len(applied))
		}
	}
}

// TestApplyDisconnectMidBatch: the session drops after some steps; those are reported,
// and the error names the first change not known to be made.
func TestApplyDisconnectMidBatch(t *testing.T) {
	h := newFakeHost("fw1")
	h.respond = func(c string) (runner.Result, error, bool) {
		if c == "systemctl restart x" {
			return runner.Result{}, runner.ErrDisconnected, true
		}
		return runner.Result{}, nil, false
	}
	var applied []string
	err := Apply(context.Background(), h, []Change{
		{Host: "fw1", Stage: "persist", Kind: KindFile, Path: "/etc/nftables.conf", New: "x\n", Summary: "persist"},
		{Host: "fw1", Stage: "persist", Kind: KindCommand, Command: "systemctl restart x", Summary: "restart"},
		{Host: "fw1", Stage: "persist", Kind: KindCommand, Command: "true", Summary: "after"},
	}, ApplyEnv{OnChange: func(c Change) { applied = append(applied, c.Summary) }})
	if !errors.Is(err, runner.ErrDisconnected) || !strings.HasPrefix(err.Error(), "fw1: persist: restart: ") {
		t.Fatalf("got %v", err)
	}
	if strings.Join(applied, ",") != "persist" {
		t.Errorf("applied %q", applied)
	}
}

// tripsPerChange is what the per-change Apply cost before batching: an upload per file
// (plus a sha256sum for the idle init) and an Exec per remove, sysctl and command.
func tripsPerChange(chs []Change) int {
	n := 0
	for _, c := range chs {
		switch c.Kind {
		case KindFile:
			n++
			if strings.HasPrefix(c.Key, idleKeyPrefix) {
				n++
			}
		case KindRemove, KindSysctl, KindCommand:
			n++
		}
	}
	return n
}

// TestApplyRoundTripsFirstUp counts the trips of a typical first up's non-ruleset
// changes: persistence on a sysvinit Debian host and two sysctls, then the same with halt.
func TestApplyRoundTripsFirstUp(t *testing.T) {
	p := Persistence{Path: "/etc/nftables.conf", Mode: 0o755, Header: "#!/usr/sbin/nft -f\n", Loader: "sysv", Service: "nftables"}
	sysctls := map[string]string{"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"}
	base := []Change{
		{Host: "fw1", Stage: "persist", Kind: KindFile, Path: p.Path, Mode: p.Mode, New: PersistContent(p, "table inet filter {}\n"), Summary: "persist"},
		{Host: "fw1", Stage: "persist", Kind: KindFile, Path: "/etc/init.d/" + InitScriptName, Mode: 0o755, New: InitScript(p.Path), Summary: "init script"},
		commandChange("fw1", "enable", sysvEnable(InitScriptName)),
	}
	for _, k := range sortedKeys(sysctls) {
		base = append(base, Change{Host: "fw1", Stage: "sysctl", Kind: KindSysctl, Key: k, New: sysctls[k], Summary: "set " + k})
	}
	base = append(base, Change{Host: "fw1", Stage: "sysctl", Kind: KindFile, Path: SysctlPath, Mode: 0o644, New: SysctlFileContent(sysctls), Summary: "sysctl file"})

	type plan struct {
		name string
		h    *fakeHost
		chs  []Change
	}
	plans := []plan{{"halt false", newFakeHost("fw1"), base}}
	for _, c := range armCases() {
		if c.name != "sysvinit-debian" && c.name != "systemd-ifupdown" {
			continue
		}
		h := c.host(t)
		arm, err := PlanArm(context.Background(), h, "fw1", c.facts, inventory.Settings{Halt: true})
		if err != nil {
			t.Fatal(err)
		}
		plans = append(plans, plan{"halt true, " + c.name, h, append(append([]Change(nil), base...), arm...)})
	}
	for _, tc := range plans {
		cr := &countingRunner{Runner: tc.h}
		if err := Apply(context.Background(), cr, tc.chs, ApplyEnv{}); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d changes, %d round trips per change before, %d now", tc.name, len(tc.chs), tripsPerChange(tc.chs), cr.trips())
		if cr.trips() != 1 {
			t.Errorf("%s: %d round trips, want 1", tc.name, cr.trips())
		}
	}
}
