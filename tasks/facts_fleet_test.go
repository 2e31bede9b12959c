package tasks

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/fleetlab"
	"github.com/haltfleet/haltfleet/internal/testenv"
)

// TestFactsScriptOnFleetHost runs the old and new scripts inside one real fleet-lab host
// (Debian 12, sysvinit as PID 1, root: the scale target) through nsenter, requires the
// same Facts, and counts the new script's execs with strace from outside the host.
func TestFactsScriptOnFleetHost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a fleet-lab host")
	}
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "mmdebstrap", "ip", "/usr/sbin/sshd")
	nsenter := testenv.NeedCommand(t, "nsenter")
	strace := testenv.NeedCommand(t, "strace")
	cfg := fleetlab.Config{N: 1, StateDir: filepath.Join(t.TempDir(), "fleet"), Parallel: 1,
		Logf: t.Logf, Prefix: "hfq", Slot: 13}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := fleetlab.Down(ctx, cfg); err != nil {
			t.Errorf("fleet down: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	f, err := fleetlab.Up(ctx, cfg)
	if err != nil {
		t.Fatalf("fleet up: %v", err)
	}
	// sh is the host's /bin/sh (dash): nsenter switches the mount namespace before exec.
	in := []string{nsenter, "-t", strconv.Itoa(f.Hosts[0].InitPID), "-a"}
	old := factsOf(t, runScript(t, "sh", scriptV1(t, "0ld0ld"), in...))
	got := factsOf(t, runScript(t, "sh", scriptFor("n3wn3w"), in...))
	sameFacts(t, "fleet host", old, got)
	if got.Init != InitSysvinit || got.Container != "lxc" || got.Distro.ID != "debian" {
		t.Errorf("not the fleet host expected: %+v", got)
	}

	traced := func(script string) []string {
		trace := filepath.Join(t.TempDir(), "trace")
		runScript(t, "sh", script, append([]string{strace, "-f", "-qq", "-e", "trace=execve", "-e", "signal=none", "-o", trace}, in...)...)
		return execsIn(t, trace)
	}
	oldExecs := traced(scriptV1(t, "0ld0ld"))
	execs := traced(scriptFor("n3wn3w"))
	// The first two are nsenter itself and the host's sh.
	if len(execs) < 2 || !strings.HasSuffix(execs[1], `sh"`) {
		t.Fatalf("trace does not start with nsenter and sh: %q", execs)
	}
	n := len(execs) - 2
	t.Logf("fleet host %s: facts %+v", f.Hosts[0].Name, got)
	t.Logf("fleet host: %d execs beyond sh (old script %d): %s", n, len(oldExecs)-2, strings.Join(execs[2:], "; "))
	if n > 5 {
		t.Errorf("new script execs %d processes on a root sysvinit host, want at most 5", n)
	}
}
