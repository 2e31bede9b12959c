package tasks

import (
	"context"
	"fmt"
	"io/fs"
	"strings"

	"github.com/haltfleet/haltfleet/inventory"
	"github.com/haltfleet/haltfleet/runner"
)

// Where the idle init lives per init system.
const (
	// ExitrdDir is the tmpfs systemd-shutdown pivots into; it must be its own mount.
	ExitrdDir = "/run/initramfs"
	// ExitrdShutdown is the program systemd-shutdown execs as PID 1 from the exitrd.
	ExitrdShutdown = ExitrdDir + "/shutdown"
	// ExitrdMountOptions: small, root only; exec because /run itself is often noexec.
	ExitrdMountOptions = "size=8m,mode=0700"
	// RunitIdle is on the root fs: runit's /run is noexec and umountfs drops tmpfs under it.
	RunitIdle = "/usr/lib/haltfleet/haltfleet-idle"
)

// idleKeyPrefix marks a KindFile change whose content is the idle binary for the arch
// after the slash; the binary is never put in Change.New (plans are printed as JSON).
const idleKeyPrefix = "haltfleet-idle/"

// ErrNoArmRecipe: the init system has no arming recipe (yet).
var ErrNoArmRecipe = fmt.Errorf("no arming recipe for this init system")

// PlanArm reads the host's current arming state in one round trip and returns only the
// changes that differ, so an armed host plans nothing. Everything is runtime-only
// (systemd) or inert until Halt creates ArmFlag (sysvinit, OpenRC, runit).
func PlanArm(ctx context.Context, r runner.Runner, host string, f Facts, s inventory.Settings) ([]Change, error) {
	st, err := readArmState(ctx, r, f, false, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: arm: %w", host, err)
	}
	ch, err := armChanges(host, f, st)
	if err != nil {
		return nil, fmt.Errorf("%s: arm: %w", host, err)
	}
	return ch, nil
}

// readArmState builds and runs the per-init state read in one round trip (two when an
// init-d-script's default file was unknown); verify adds the idle self-test and extra
// adds the caller's own sections to the same round trip.
func readArmState(ctx context.Context, r runner.Runner, f Facts, verify bool, extra func(*armRead)) (armState, error) {
	rd := newArmRead()
	switch f.Init {
	case InitSystemd:
		systemdRead(rd, f, verify)
	case InitSysvinit:
		sysvRead(rd)
	case InitOpenRC:
		sysvRead(rd)
		rd.file(openrcConf)
	case InitRunit:
		sysvRead(rd)
		rd.file(runitStage3)
		idleRead(rd, RunitIdle, verify)
		rd.cmd("runit-dir", "[ -d "+runner.Quote(armDir(RunitIdle))+" ] && echo yes")
	default:
		return armState{}, fmt.Errorf("%w: %q", ErrNoArmRecipe, f.Init)
	}
	if extra != nil {
		extra(rd)
	}
	st, err := rd.run(ctx, r)
	if err != nil {
		return st, err
	}
	if f.Init == InitSystemd {
		return st, nil
	}
	if more := sysvGuardFilesMissing(st); len(more) > 0 {
		rd2 := newArmRead()
		for _, p := range more {
			rd2.file(p)
		}
		st2, err := rd2.run(ctx, r)
		if err != nil {
			return st, err
		}
		for k, v := range st2.files {
			st.files[k] = v
		}
	}
	return st, nil
}

// armChanges derives the arm plan from a state read: the same function backs PlanArm
// and Verify (an armed host is one whose state derives no changes).
func armChanges(host string, f Facts, st armState) ([]Change, error) {
	var out []Change
	switch f.Init {
	case InitSystemd:
		out = systemdChanges(f, st)
	case InitSysvinit:
		out = sysvChanges(st)
	case InitOpenRC:
		out = append(sysvGuardChanges(st, []string{"halt"}), openrcChanges(st)...)
	case InitRunit:
		out = sysvChanges(st)
		if st.section("runit-dir") != "yes" {
			out = append(out, Change{Kind: KindCommand, Summary: "create " + armDir(RunitIdle),
				Command: "install -d -m 0755 " + runner.Quote(armDir(RunitIdle))})
		}
		out = append(out, idleChanges(f, st, RunitIdle)...)
		rc, err := runitChanges(st)
		if err != nil {
			return nil, err
		}
		out = append(out, rc...)
	default:
		return nil, fmt.Errorf("%w: %q", ErrNoArmRecipe, f.Init)
	}
	for i := range out {
		out[i].Host, out[i].Stage = host, "arm"
	}
	return out, nil
}

// idleRead reads the idle binary's hash and, when verifying, runs its self-test.
func idleRead(rd *armRead, path string, verify bool) {
	p := runner.Quote(path)
	rd.cmd("idle-sha "+path, "sha256sum "+p)
	// mode bits, not test -x: on a noexec mount -x is false though the file is fine
	rd.cmd("idle-x "+path, "[ -f "+p+" ] && case $(stat -c %a "+p+") in *[1357]??) echo yes ;; esac")
	if verify {
		rd.cmd("idle-selftest "+path, "if [ -x "+p+" ]; then timeout 20 "+p+" --selftest 2>&1; echo \"exit=$?\"; fi")
	}
}

// idleChanges installs the idle binary when its hash differs from the one shipped.
func idleChanges(f Facts, st armState, path string) []Change {
	want := idleSHA256(f.Arch)
	have, _, _ := strings.Cut(st.section("idle-sha "+path), " ")
	if have == want && st.section("idle-x "+path) == "yes" {
		return nil
	}
	old := "absent"
	if have != "" {
		old = "sha256 " + have
	}
	return []Change{{
		Kind:    KindFile,
		Path:    path,
		Key:     idleKeyPrefix + f.Arch,
		Mode:    0o755,
		Summary: fmt.Sprintf("install the idle init (%s) at %s", f.Arch, path),
		Diff:    fmt.Sprintf("--- %s\n+++ %s\n-%s\n+sha256 %s (haltfleet-idle %s, static)\n", path, path, old, want, f.Arch),
	}}
}

// fileChange returns the change that makes path hold want, or false when it already does.
func armFileChange(path string, cur armFile, want string, mode fs.FileMode, summary string) (Change, bool) {
	if cur.Exists && cur.Content == want {
		return Change{}, false
	}
	return Change{
		Kind:    KindFile,
		Path:    path,
		Old:     cur.Content,
		New:     want,
		Mode:    mode,
		Summary: summary,
		Diff:    UnifiedDiff(path, path, cur.Content, want),
	}, true
}
