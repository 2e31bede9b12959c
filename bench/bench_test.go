package bench_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/fleetlab"
	"github.com/haltfleet/haltfleet/internal/testenv"
)

// TestInterruptTakesFleetDown starts the benchmark program on a 5-host fleet, sends
// SIGINT while haltfleet up runs on it, and checks that the program exits having taken
// the fleet down: no namespaces of its prefix, no recorded fleet, no counter table.
func TestInterruptTakesFleetDown(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "mmdebstrap", "ip", "nsenter", "/usr/sbin/sshd", "nft", "ssh", "go")
	const prefix, slot = "hfi", 12
	tmp := t.TempDir()
	state := filepath.Join(tmp, "state")
	fcfg := fleetlab.Config{N: 5, StateDir: filepath.Join(state, "n5"), Prefix: prefix, Slot: slot}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		_ = fleetlab.Down(ctx, fcfg) // only if the program failed to
		_ = exec.Command("nft", "delete", "table", "inet", "hfbench_"+prefix).Run()
	})
	bin, hf := filepath.Join(tmp, "haltfleet-bench"), filepath.Join(tmp, "haltfleet")
	for out, pkg := range map[string]string{bin: "./cmd/haltfleet-bench", hf: "../cmd/haltfleet"} {
		if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-n", "5", "-forks", "5", "-prefix", prefix, "-slot", "12",
		"-work", filepath.Join(tmp, "work"), "-state", state, "-haltfleet", hf,
		"-only", "floor-go,hf-up,hf-audit")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	sc := bufio.NewScanner(stderr)
	interrupted := false
	for sc.Scan() {
		line := sc.Text()
		log.WriteString(line + "\n")
		if !interrupted && strings.HasSuffix(line, "N=5: hf-up") {
			if names := nsWithPrefix(t, prefix); len(names) < 5 {
				t.Errorf("hf-up started with namespaces %v, want the fleet's", names)
			}
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			interrupted = true
		}
	}
	err = cmd.Wait()
	if !interrupted {
		t.Fatalf("the program never reached hf-up (exit %v):\n%s", err, log.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit = %v, want 1 (interrupted)", err)
	}
	if !strings.Contains(log.String(), "fleet "+prefix+": down in") {
		t.Errorf("no Down after the interrupt:\n%s", log.String())
	}
	if names := nsWithPrefix(t, prefix); len(names) > 0 {
		t.Errorf("namespaces left after the interrupt: %v", names)
	}
	if _, err := fleetlab.Status(fcfg); !errors.Is(err, fleetlab.ErrNoFleet) {
		t.Errorf("fleetlab.Status after the interrupt = %v, want ErrNoFleet", err)
	}
	if out, err := exec.Command("nft", "list", "tables").Output(); err != nil || strings.Contains(string(out), "hfbench_"+prefix) {
		t.Errorf("counter table left (or nft failed: %v):\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(tmp, "work", "results.json")); err != nil {
		t.Errorf("no results after the interrupt: %v", err)
	}
}

func nsWithPrefix(t *testing.T, prefix string) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	var names []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			names = append(names, f[0])
		}
	}
	return names
}
