package tasks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/internal/testenv"
	"github.com/haltfleet/haltfleet/inventory"
	"github.com/haltfleet/haltfleet/runner"
)

func TestProbeCommandRefusesBadTargets(t *testing.T) {
	for _, p := range []inventory.Probe{
		{Proto: "tcp", To: "10.0.0.1"},       // no port
		{Proto: "tcp", To: "-e/bin/sh:80"},   // option injection into nc
		{Proto: "tcp", To: "10.0.0.1:0"},     // port range
		{Proto: "tcp", To: "10.0.0.1:080"},   // not canonical
		{Proto: "udp", To: "10.0.0.1:99999"}, // port range
		{Proto: "icmp", To: "-f"},            // ping flood flag
		{Proto: "sctp", To: "10.0.0.1:80"},   // unknown proto
		{Proto: "tcp", To: "a b:80"},         // space
	} {
		if cmd, err := ProbeCommand(p, time.Second); err == nil {
			t.Errorf("%+v accepted: %s", p, cmd)
		}
	}
}

// TestProbeCommandQuotesHostile runs the built command through a real sh with stub nc
// and ping that print their argv: a hostile address arrives as one argument, unexpanded.
func TestProbeCommandQuotesHostile(t *testing.T) {
	testenv.NeedCommand(t, "sh")
	dir := t.TempDir()
	for _, tool := range []string{"nc", "ping"} {
		stub := "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]' \"$a\"; done; echo\n"
		if err := os.WriteFile(filepath.Join(dir, tool), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hostile := "$(>pwned);`>pwned`'\"*"
	for _, p := range []inventory.Probe{
		{Proto: "tcp", To: "[" + hostile + "]:80"},
		{Proto: "udp", To: "[" + hostile + "]:53"},
		{Proto: "icmp", To: hostile},
	} {
		cmd, err := ProbeCommand(p, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c := exec.Command("sh", "-c", cmd)
		c.Dir = dir
		c.Env = []string{"PATH=" + dir + ":/usr/bin:/bin"}
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if !strings.Contains(string(out), "["+hostile+"]") {
			t.Errorf("%s: address not passed as one literal argument:\n%s", p.Proto, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
			t.Fatalf("%s: command substitution ran", p.Proto)
		}
	}
}

func TestInterpretProbe(t *testing.T) {
	tests := []struct {
		out     string
		open    bool
		wantErr bool
	}{
		{"Connection to 10.0.0.2 8080 port [tcp/*] succeeded!\nrc=0\n", true, false},
		{"nc: connect to 10.0.0.2 port 8081 (tcp) failed: Connection refused\nrc=1\n", false, false},
		{"reply: haltfleet-probe\nrc=0\n", true, false},
		{"no reply\nrc=1\n", false, false},
		{"rc=noprobe\n", false, true},
		{"sh: 1: nc: not found\nrc=127\n", false, true},
		{"garbage", false, true},
	}
	for _, tc := range tests {
		open, _, err := interpretProbe(tc.out)
		if (err != nil) != tc.wantErr || (err == nil && open != tc.open) {
			t.Errorf("%q: open=%v err=%v", tc.out, open, err)
		}
	}
}

func TestRunProbeExpectation(t *testing.T) {
	h := newFakeHost("lan1")
	h.respond = func(c string) (runner.Result, error, bool) {
		if strings.Contains(c, " 80") {
			return runner.Result{Stdout: []byte("succeeded\nrc=0\n")}, nil, true
		}
		return runner.Result{Stdout: []byte("timed out\nrc=1\n")}, nil, true
	}
	ctx := context.Background()
	for _, tc := range []struct {
		p          inventory.Probe
		open, ok   bool
		errPresent bool
	}{
		{inventory.Probe{From: "lan1", To: "10.0.0.1:80", Proto: "tcp", Expect: "open"}, true, true, false},
		{inventory.Probe{From: "lan1", To: "10.0.0.1:81", Proto: "tcp", Expect: "closed"}, false, true, false},
		{inventory.Probe{From: "lan1", To: "10.0.0.1:81", Proto: "tcp", Expect: "open"}, false, false, false},
		{inventory.Probe{From: "lan1", To: "10.0.0.1:81", Proto: "tcp", Expect: "maybe"}, false, false, true},
	} {
		r := RunProbe(ctx, h, tc.p)
		if r.Open != tc.open || r.OK != tc.ok || (r.Err != "") != tc.errPresent {
			t.Errorf("%+v: got %+v", tc.p, r)
		}
	}
}

// nsRunner runs commands inside a network namespace through a real local runner.
type nsRunner struct {
	runner.Runner
	ns   string
	path string // PATH override, "" for the default
}

func (n nsRunner) Exec(ctx context.Context, cmd runner.Cmd) (runner.Result, error) {
	inner := cmd.Command
	if n.path != "" {
		inner = "PATH=" + runner.Quote(n.path) + "; export PATH; " + inner
	}
	cmd.Command = "ip netns exec " + runner.Quote(n.ns) + " sh -c " + runner.Quote(inner)
	return n.Runner.Exec(ctx, cmd)
}

// probeLab is two network namespaces joined by a veth pair: srv listens on tcp/8080 and
// echoes udp/5353, drops tcp/8081, udp/5354 and icmp to its second address.
type probeLab struct{ cli, srv string }

func newProbeLab(t *testing.T) probeLab {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "ip", "nft", "socat", "nc", "ping")
	b := make([]byte, 3)
	rand.Read(b)
	id := hex.EncodeToString(b)
	l := probeLab{cli: "hfp-c-" + id, srv: "hfp-s-" + id}
	sh := func(cmd string) {
		t.Helper()
		if out, err := exec.Command("sh", "-c", cmd).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
	}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "pids", l.srv).Run()
		exec.Command("sh", "-c", "for p in $(ip netns pids "+l.srv+"); do kill $p; done").Run()
		exec.Command("ip", "netns", "del", l.cli).Run()
		exec.Command("ip", "netns", "del", l.srv).Run()
	})
	sh("ip netns add " + l.cli + " && ip netns add " + l.srv)
	sh("ip link add hfpc netns " + l.cli + " type veth peer name hfps netns " + l.srv)
	sh("ip -n " + l.cli + " addr add 10.231.0.1/24 dev hfpc && ip -n " + l.cli + " link set hfpc up && ip -n " + l.cli + " link set lo up")
	sh("ip -n " + l.srv + " addr add 10.231.0.2/24 dev hfps && ip -n " + l.srv + " addr add 10.231.0.3/24 dev hfps && ip -n " + l.srv + " link set hfps up && ip -n " + l.srv + " link set lo up")
	sh("ip netns exec " + l.srv + " nft -f - <<'EOF'\ntable inet probe {\n chain in {\n  type filter hook input priority 0;\n  tcp dport 8081 drop\n  udp dport 5354 drop\n  ip daddr 10.231.0.3 icmp type echo-request drop\n }\n}\nEOF")
	for _, c := range []string{"socat TCP-LISTEN:8080,fork,reuseaddr SYSTEM:true", "socat UDP-RECVFROM:5353,fork PIPE", "socat UDP-RECVFROM:5354,fork PIPE"} {
		cmd := exec.Command("ip", append([]string{"netns", "exec", l.srv}, strings.Fields(c)...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	time.Sleep(200 * time.Millisecond) // listeners up
	return l
}

func TestRunProbeRealNetns(t *testing.T) {
	l := newProbeLab(t)
	local := runner.NewLocal(runner.LocalOptions{Name: "lan1"})
	// a PATH with bash but no nc exercises the /dev/tcp and /dev/udp fallbacks
	nonc := t.TempDir()
	for _, tool := range []string{"sh", "bash", "timeout", "dd", "ping"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		os.Symlink(p, filepath.Join(nonc, tool))
	}
	runners := map[string]runner.Runner{
		"nc":   nsRunner{Runner: local, ns: l.cli},
		"bash": nsRunner{Runner: local, ns: l.cli, path: nonc},
	}
	probes := []struct {
		proto, to string
		open      bool
	}{
		{"tcp", "10.231.0.2:8080", true},
		{"tcp", "10.231.0.2:8082", false}, // refused
		{"tcp", "10.231.0.2:8081", false}, // dropped: times out
		{"udp", "10.231.0.2:5353", true},  // echoed
		{"udp", "10.231.0.2:5354", false}, // dropped
		{"icmp", "10.231.0.2", true},
		{"icmp", "10.231.0.3", false},
	}
	ctx := context.Background()
	for name, r := range runners {
		for _, p := range probes {
			if name == "bash" && p.proto == "icmp" {
				continue // ping is the only icmp tool
			}
			t.Run(fmt.Sprintf("%s/%s/%s", name, p.proto, p.to), func(t *testing.T) {
				expect := map[bool]string{true: "open", false: "closed"}[p.open]
				res := RunProbe(ctx, r, inventory.Probe{From: "lan1", To: p.to, Proto: p.proto, Expect: expect})
				if res.Err != "" || res.Open != p.open || !res.OK {
					t.Errorf("got %+v", res)
				}
				t.Logf("%s %s: open=%v in %s (%s)", p.proto, p.to, res.Open, res.Duration.Round(time.Millisecond), res.Detail)
			})
		}
	}
}
