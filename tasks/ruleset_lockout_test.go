package tasks

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/internal/testenv"
)

// TestRulesetNetnsLockoutReverts drives the confirm the way the CLI does: through a NEW
// TCP connection from a controller namespace over a veth, to a listener on the firewall
// that runs DeadmanCancelCommand. A ruleset that blocks new connections must revert; one
// that lets them in must stay.
func TestRulesetNetnsLockoutReverts(t *testing.T) {
	r := newNetns(t)
	testenv.NeedCommand(t, "socat", "nc")
	ctl := r.ns + "-c"
	if out, err := exec.Command("ip", "netns", "add", ctl).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ctl).Run() })
	for _, args := range [][]string{
		{"link", "add", "hfv0", "netns", r.ns, "type", "veth", "peer", "name", "hfv1", "netns", ctl},
		{"-n", r.ns, "addr", "add", "10.77.0.1/24", "dev", "hfv0"},
		{"-n", r.ns, "link", "set", "hfv0", "up"},
		{"-n", ctl, "addr", "add", "10.77.0.2/24", "dev", "hfv1"},
		{"-n", ctl, "link", "set", "hfv1", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	script := filepath.Join(t.TempDir(), "cancel.sh")
	if err := os.WriteFile(script, []byte(DeadmanCancelCommand()+" 2>&1\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	listener := exec.Command("ip", "netns", "exec", r.ns, "socat", "TCP-LISTEN:2222,reuseaddr,fork", "EXEC:sh "+script)
	if err := listener.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { listener.Process.Kill(); listener.Wait() })

	confirm := func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ctl, "nc", "-w", "1", "10.77.0.1", "2222")
		out, err := cmd.Output()
		if err != nil || !strings.Contains(string(out), "cancelled") {
			return errors.New("new connection to the firewall failed: " + strings.TrimSpace(string(out)))
		}
		return nil
	}
	// Wait for the listener and check the path works with the accept-all old ruleset.
	loadRuleset(t, r, oldRuleset)
	up := false
	for i := 0; i < 50 && !up; i++ {
		up = exec.Command("ip", "netns", "exec", ctl, "nc", "-z", "-w", "1", "10.77.0.1", "2222").Run() == nil
		time.Sleep(50 * time.Millisecond)
	}
	if !up {
		t.Fatal("listener never came up")
	}

	lockout := "table inet f {\n\tchain input {\n\t\ttype filter hook input priority 0; policy drop;\n" +
		"\t\tct state established,related accept\n\t\tiifname \"lo\" accept\n\t}\n}\n"
	start := time.Now()
	err := ApplyRuleset(context.Background(), r, Change{Kind: KindRuleset, New: lockout}, confirm, 3*time.Second)
	if !errors.Is(err, ErrRolledBack) {
		t.Fatalf("lockout ruleset: want ErrRolledBack, got %v", err)
	}
	t.Logf("lockout ruleset reverted after %v: %v", time.Since(start).Round(time.Millisecond), err)
	mustInSync(t, r, oldRuleset, "after lockout")

	good := strings.Replace(lockout, "\t\tiifname \"lo\" accept\n", "\t\tiifname \"lo\" accept\n\t\ttcp dport 2222 accept\n", 1)
	start = time.Now()
	if err := ApplyRuleset(context.Background(), r, Change{Kind: KindRuleset, New: good}, confirm, 3*time.Second); err != nil {
		t.Fatalf("good ruleset: %v", err)
	}
	t.Logf("good ruleset confirmed over a new connection in %v", time.Since(start).Round(time.Millisecond))
	time.Sleep(3500 * time.Millisecond) // past the dead-man time: it must not fire
	mustInSync(t, r, good, "3.5s after confirming the good ruleset")
	if _, err := os.Stat(RunDir + "/deadman.fired"); !os.IsNotExist(err) {
		t.Error("the timer fired after a successful confirm")
	}
}
