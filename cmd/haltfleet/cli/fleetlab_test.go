package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/fleetlab"
	"github.com/haltfleet/haltfleet/internal/testenv"
	"github.com/haltfleet/haltfleet/rollout"
)

// labFleet is a fleetlab fleet plus the files the rollout tests write for it.
type labFleet struct {
	*fleetlab.Fleet
	dir string
}

func startFleet(t *testing.T, n int, prefix string, slot int) *labFleet {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "mmdebstrap", "ip", "nsenter", "/usr/sbin/sshd", "nft", "nc")
	cfg := fleetlab.Config{N: n, StateDir: filepath.Join(t.TempDir(), "fleet"), Parallel: 8, Prefix: prefix, Slot: slot, Logf: t.Logf}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := fleetlab.Down(ctx, cfg); err != nil {
			t.Errorf("fleetlab down: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	f, err := fleetlab.Up(ctx, cfg)
	if err != nil {
		t.Fatalf("fleetlab up: %v", err)
	}
	t.Logf("%d fleet hosts answer SSH after %s", len(f.Hosts), f.Took)
	return &labFleet{Fleet: f, dir: t.TempDir()}
}

// ruleset writes a ruleset whose input chain carries marker, so a host shows which
// ruleset it got.
func (lf *labFleet) ruleset(t *testing.T, marker string) string {
	p := filepath.Join(lf.dir, marker+".nft")
	os.WriteFile(p, []byte(`flush ruleset
table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iif "lo" accept
		tcp dport 22 accept comment "`+marker+`"
	}
}
`), 0o644)
	return p
}

// inventory writes hosts.yml: every host live, the ruleset, forwarding on, one probe
// (SSH open from the controller); extra adds YAML lines per host.
func (lf *labFleet) inventory(t *testing.T, name, ruleset string, extra map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "all:\n  vars:\n    ansible_user: root\n    ansible_ssh_private_key_file: %s\n    haltfleet_halt: false\n"+
		"    haltfleet_ruleset: %s\n    haltfleet_deadman_seconds: 5\n  children:\n    fleet:\n      hosts:\n", lf.KeyFile, ruleset)
	for _, h := range lf.Hosts {
		fmt.Fprintf(&b, "        %s:\n          ansible_host: %s\n", h.Name, h.Addr)
		e, ok := extra[h.Name]
		if !strings.Contains(e, "haltfleet_probes") {
			fmt.Fprintf(&b, "          haltfleet_probes:\n            - {from: controller, to: \"%s:22\", proto: tcp, expect: open}\n", h.Addr)
		}
		if ok {
			b.WriteString(e)
		} else {
			b.WriteString("          haltfleet_sysctls: {net.ipv4.ip_forward: \"1\"}\n")
		}
	}
	p := filepath.Join(lf.dir, name)
	os.WriteFile(p, []byte(b.String()), 0o644)
	return p
}

// nft runs nft inside host i's network namespace.
func (lf *labFleet) nft(t *testing.T, i int, args ...string) string {
	out, err := exec.Command("ip", append([]string{"netns", "exec", lf.Hosts[i].NS, "nft"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: nft %v: %v %s", lf.Hosts[i].Name, args, err, out)
	}
	return string(out)
}

// inHost runs a command in every namespace of host i (its init's).
func (lf *labFleet) inHost(t *testing.T, i int, argv ...string) {
	out, err := exec.Command("nsenter", append([]string{"-t", fmt.Sprint(lf.Hosts[i].InitPID), "-a", "--"}, argv...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %v %s", lf.Hosts[i].Name, argv, err, out)
	}
}

// readEvents parses an NDJSON events file, skipping a torn last line (killed writer).
func readEvents(t *testing.T, path string) []eventLine {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []eventLine
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e eventLine
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// applied counts "apply changed" events per host and change summary.
func applied(events []eventLine) map[string]int {
	m := map[string]int{}
	for _, e := range events {
		if e.Stage == "apply" && e.Status == "changed" {
			m[e.Host+" | "+e.Message]++
		}
	}
	return m
}

// TestRolloutOnFleetLab is the demonstration on 30 real sysvinit+sshd hosts:
// a canary + budget stop leaves later waves untouched; a rerun resumes; a controller
// SIGKILLed mid-wave is rerun to convergence with no change made twice; plan and audit
// see a manual edit; audit catches a tampered halted host by its probes; JUnit validates.
func TestRolloutOnFleetLab(t *testing.T) {
	testenv.NeedCommand(t, "xmllint")
	lf := startFleet(t, 30, "hfr", 9)
	t.Setenv("XDG_STATE_HOME", filepath.Join(lf.dir, "state"))
	common := []string{"-F", "none", "--known-hosts", lf.KnownHosts}
	name := func(i int) string { return lf.Hosts[i].Name }

	// Run 1: h005 is set to fail verification (ip_forward "01" is written, reads back "1");
	// h003 and h004 are a redundant pair.
	r1 := lf.ruleset(t, "hf-rollout-1")
	pair := "          haltfleet_wave_group: pair-a\n          haltfleet_sysctls: {net.ipv4.ip_forward: \"1\"}\n"
	bad := map[string]string{name(4): "          haltfleet_sysctls: {net.ipv4.ip_forward: \"01\"}\n", name(2): pair, name(3): pair}
	inv := lf.inventory(t, "hosts.yml", r1, bad)
	ev1 := filepath.Join(lf.dir, "run1.ndjson")
	code, out := haltfleet(t, append([]string{"up", "-i", inv, "--serial", "1,30%,100%", "--forks", "10", "--yes", "--events", ev1}, common...)...)
	t.Logf("run 1:\n%s", out)
	if code != exitError || !strings.Contains(out, "rollout stopped: 1 failed in wave 2") || !strings.Contains(out, "verification failed") {
		t.Fatalf("run 1: exit %d, want 1 with a budget stop in wave 2", code)
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("escape codes in output that is not a terminal")
	}
	// Waves: h001 | h002 h003 h005..h011 (h004 waits: pair-a) | the rest, never started.
	events := readEvents(t, ev1)
	var waves []string
	for _, e := range events {
		if e.Stage == stageWave {
			waves = append(waves, e.Message)
		}
	}
	if len(waves) != 2 || !strings.HasPrefix(waves[0], "wave 1/3: 1 hosts: h001") ||
		!strings.Contains(waves[1], "h003") || strings.Contains(waves[1], "h004") || !strings.Contains(waves[1], "h011") {
		t.Errorf("waves started: %q", waves)
	}
	touched := map[string]bool{}
	for _, e := range events {
		if e.Host != "" {
			touched[e.Host] = true
		}
	}
	for i := range lf.Hosts {
		rs := lf.nft(t, i, "list", "ruleset")
		has := strings.Contains(rs, "hf-rollout-1")
		_, sysctlErr := os.Stat(filepath.Join(lf.Hosts[i].Dir, "upper", "etc", "sysctl.d", "99-haltfleet.conf"))
		switch {
		case touched[name(i)] && !has:
			t.Errorf("%s was worked on but lacks the ruleset", name(i))
		case !touched[name(i)] && (has || sysctlErr == nil):
			t.Errorf("%s was not started but was changed (ruleset %v, sysctl file %v)", name(i), has, sysctlErr == nil)
		}
	}
	if len(touched) != 10 {
		t.Errorf("%d hosts touched, want 10 (wave 1 and 2)", len(touched))
	}

	// Run 2: h005 fixed; the rerun resumes: the 9 hosts done are skipped, 21 converge.
	delete(bad, name(4))
	inv = lf.inventory(t, "hosts.yml", r1, bad)
	ev2 := filepath.Join(lf.dir, "run2.ndjson")
	code, out = haltfleet(t, append([]string{"up", "-i", inv, "--serial", "1,30%,100%", "--forks", "10", "--yes", "--events", ev2}, common...)...)
	t.Logf("run 2:\n%s", out)
	if code != 0 || !strings.Contains(out, "recap: ok=0 changed=21 halted=0 failed=0 skipped=9 unreachable=0") {
		t.Fatalf("run 2 (resume): exit %d", code)
	}
	for k, n := range applied(readEvents(t, ev2)) {
		if h, _, _ := strings.Cut(k, " | "); touched[h] && h != name(4) {
			t.Errorf("run 2 changed %s again (%d×): %s", h, n, k)
		}
	}

	// Run 3: a new ruleset for everyone, the controller SIGKILLed in the middle of wave 3.
	bin := filepath.Join(lf.dir, "haltfleet")
	if b, err := exec.Command("go", "build", "-o", bin, "github.com/haltfleet/haltfleet/cmd/haltfleet").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v %s", err, b)
	}
	r2 := lf.ruleset(t, "hf-rollout-2")
	inv = lf.inventory(t, "hosts.yml", r2, bad)
	ev3 := filepath.Join(lf.dir, "run3.ndjson")
	jpath, _ := rollout.DefaultPath(inv)
	cmd := exec.Command(bin, append([]string{"up", "-i", inv, "--serial", "1,30%,100%", "--forks", "3", "--yes", "--events", ev3}, common...)...)
	cmd.Env = os.Environ()
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		recs, _ := rollout.Read(jpath)
		verified := 0
		for _, r := range recs[len(recs)-min(len(recs), 200):] {
			if r.Stage == rollout.StageVerified && strings.Contains(r.RulesetSHA256, rollout.HashRuleset(mustRead(t, r2))) {
				verified++
			}
		}
		if verified >= 14 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	ev3events := readEvents(t, ev3)
	started := map[string]bool{}
	for _, e := range ev3events {
		if e.Host != "" {
			started[e.Host] = true
		}
	}
	t.Logf("run 3 killed after %d hosts were started", len(started))
	if len(started) >= 30 || len(started) < 14 {
		t.Fatalf("the kill came at the wrong moment: %d hosts started", len(started))
	}

	// Run 4: resumes the killed run and converges; no change is made twice.
	ev4 := filepath.Join(lf.dir, "run4.ndjson")
	code, out = haltfleet(t, append([]string{"up", "-i", inv, "--serial", "1,30%,100%", "--forks", "10", "--yes", "--events", ev4}, common...)...)
	t.Logf("run 4:\n%s", out)
	if code != 0 || !strings.Contains(out, "resuming") {
		t.Fatalf("run 4 after the kill: exit %d, want 0 resuming", code)
	}
	both := applied(ev3events)
	for k, n := range applied(readEvents(t, ev4)) {
		both[k] += n
	}
	for k, n := range both {
		if n > 1 {
			t.Errorf("changed %d times across the killed run and its rerun: %s", n, k)
		}
	}
	for i := range lf.Hosts {
		if rs := lf.nft(t, i, "list", "ruleset"); !strings.Contains(rs, "hf-rollout-2") {
			t.Errorf("%s did not converge to ruleset 2", name(i))
		}
	}

	// plan: converged → 0; a rule added by hand on h007 → 2 with the diff.
	code, out = haltfleet(t, append([]string{"plan", "-i", inv}, common...)...)
	if code != exitOK || strings.Count(out, "nothing to do") != 30 {
		t.Fatalf("plan on the converged fleet: exit %d\n%s", code, out)
	}
	lf.nft(t, 6, "add", "rule", "inet", "filter", "input", "tcp", "dport", "8080", "accept")
	code, out = haltfleet(t, append([]string{"plan", "-i", inv}, common...)...)
	if code != exitDiff || !strings.Contains(out, "== h007: ") || !strings.Contains(out, "-\t\ttcp dport 8080 accept") || strings.Count(out, "nothing to do") != 29 {
		t.Errorf("plan after a manual edit: exit %d, want 2 with the diff\n%s", code, out)
	}
	t.Logf("plan after the edit:\n%s", out)

	// audit: the same edit is drift, named, with its diff, in text and JUnit.
	code, out = haltfleet(t, append([]string{"audit", "-i", inv}, common...)...)
	if code != exitDiff || !strings.Contains(out, "== h007: DRIFT (live)") || !strings.Contains(out, "[ruleset") || !strings.Contains(out, "8080") {
		t.Errorf("audit after the edit: exit %d\n%s", code, out)
	}
	junit := filepath.Join(lf.dir, "audit.xml")
	code, out = haltfleet(t, append([]string{"audit", "-i", inv, "--format", "junit", "-o", junit}, common...)...)
	xml := mustRead(t, junit)
	if code != exitDiff || !strings.Contains(xml, `tests="30" failures="1" errors="0"`) || !strings.Contains(xml, `<testcase name="h007"`) {
		t.Errorf("audit junit: exit %d %s\n%s", code, out, xml)
	}
	validateJUnit(t, junit)

	// A halted host: h030 with SSH stopped (its namespace keeps the ruleset, as a halted
	// box's kernel does), the journal saying haltfleet halted it.
	h := 29
	lf.inHost(t, h, "/etc/init.d/ssh", "stop")
	addr := lf.Hosts[h].Addr
	halted := map[string]string{name(h): fmt.Sprintf("          haltfleet_halt: true\n          haltfleet_probes:\n"+
		"            - {from: controller, to: \"%s:22\", proto: tcp, expect: closed}\n"+
		"            - {from: controller, to: \"%s:8081\", proto: tcp, expect: closed}\n", addr, addr)}
	inv2 := lf.inventory(t, "halted.yml", r2, halted)
	j2 := filepath.Join(lf.dir, "halted-journal.ndjson")
	j, err := rollout.Open(j2)
	if err != nil {
		t.Fatal(err)
	}
	j.Append(rollout.Record{Host: name(h), Stage: rollout.StageHalted, RunID: "run-x"})
	j.Append(rollout.Record{Host: name(h), Stage: rollout.StageProbed, RunID: "run-x"})
	j.Close()
	audit := append([]string{"audit", "-i", inv2, "--limit", name(h), "--journal", j2}, common...)
	if code, out = haltfleet(t, audit...); code != exitOK || !strings.Contains(out, "in sync (halted)") {
		t.Fatalf("audit of an intact halted host: exit %d\n%s", code, out)
	}
	// Tamper: a rule lets 8081 in and something listens there.
	lf.nft(t, h, "insert", "rule", "inet", "filter", "input", "tcp", "dport", "8081", "accept")
	listener := exec.Command("ip", "netns", "exec", lf.Hosts[h].NS, "nc", "-lk", "-p", "8081")
	if err := listener.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { listener.Process.Kill(); listener.Wait() })
	time.Sleep(300 * time.Millisecond)
	code, out = haltfleet(t, audit...)
	if code != exitDiff || !strings.Contains(out, "DRIFT (halted)") || !strings.Contains(out, fmt.Sprintf("probe controller -> tcp %s:8081] open, expected closed", addr)) {
		t.Errorf("audit of a tampered halted host: exit %d\n%s", code, out)
	}
	jx := filepath.Join(lf.dir, "halted.xml")
	haltfleet(t, append(audit, "--format", "junit", "-o", jx)...)
	validateJUnit(t, jx)
	// It answers SSH again: rebooted, as far as anyone outside can tell.
	lf.inHost(t, h, "/etc/init.d/ssh", "start")
	code, out = haltfleet(t, audit...)
	if code != exitDiff || !strings.Contains(out, "[ssh] answers SSH again, but run run-x halted it") {
		t.Errorf("audit of a halted host answering SSH: exit %d\n%s", code, out)
	}
	t.Logf("audit of the halted host answering SSH:\n%s", out)
}

func mustRead(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// validateJUnit checks a report against the schema CI systems read.
func validateJUnit(t *testing.T, path string) {
	t.Helper()
	testenv.NeedCommand(t, "xmllint")
	out, err := exec.Command("xmllint", "--noout", "--schema", "testdata/jenkins-junit.xsd", path).CombinedOutput()
	if err != nil {
		t.Errorf("%s does not validate against jenkins-junit.xsd: %v\n%s", path, err, out)
	}
}
