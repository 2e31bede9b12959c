package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// Helpers the test binary runs as PID 1 of fresh namespaces (see TestMain) to stage what the
// idle init finds when it starts, then exec it.

// stageExitrd runs as PID 1 of fresh PID and mount namespaces: it arranges a fake /oldroot
// under $HALTFLEET_IDLE_ROOT, leaves a child that lingers, and execs the idle init as "halt".
func stageExitrd(bin string) {
	fatal := func(stage string, err error) {
		os.Stderr.WriteString("stage exitrd: " + stage + ": " + err.Error() + "\n")
		os.Exit(3)
	}
	if err := syscall.Mount("none", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		fatal("make / private", err)
	}
	root := os.Getenv(envRoot)
	steps := []struct {
		source, dir, fstype string
		flags               uintptr
	}{
		{"oldroot", "", "tmpfs", 0},
		{"proc", "proc", "proc", 0},
		{"sysfs", "sys", "sysfs", 0},
		{"run", "run", "tmpfs", 0},
		{"lock", "run/lock", "tmpfs", 0},
		{"under", "stack", "tmpfs", 0},
		{"inner", "stack/inner", "tmpfs", 0}, // hidden by the next: unreachable by name
		{"over", "stack", "tmpfs", 0},        // two mounts on one point
		{"/", "disk", "", syscall.MS_BIND},
	}
	for _, s := range steps {
		p := filepath.Join(root, s.dir)
		if err := os.MkdirAll(p, 0o700); err != nil {
			fatal("mkdir", err)
		}
		if err := syscall.Mount(s.source, p, s.fstype, s.flags, ""); err != nil {
			fatal("mount "+p, err)
		}
	}
	if err := startLinger(); err != nil {
		fatal("start linger", err)
	}
	env := []string{envRoot + "=" + root, envCensus + "=" + os.Getenv(envCensus)}
	fatal("exec", syscall.Exec(bin, []string{"/shutdown", "halt"}, env))
}

// stagePivot does what systemd-shutdown does before it execs /shutdown: a tmpfs root with the
// idle init as /shutdown, the API filesystems bound in, pivot_root with the old root at /oldroot.
func stagePivot(bin, dir string) {
	fatal := func(stage string, err error) {
		os.Stderr.WriteString("stage pivot: " + stage + ": " + err.Error() + "\n")
		os.Exit(3)
	}
	if err := syscall.Mount("none", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		fatal("make / private", err)
	}
	if err := syscall.Mount("exitrd", dir, "tmpfs", 0, "size=16m"); err != nil {
		fatal("mount exitrd", err)
	}
	for _, api := range []string{"proc", "dev", "sys", "run", "oldroot"} {
		if err := os.Mkdir(filepath.Join(dir, api), 0o755); err != nil {
			fatal("mkdir", err)
		}
		if api == "oldroot" {
			continue
		}
		if err := syscall.Mount("/"+api, filepath.Join(dir, api), "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			fatal("bind /"+api, err)
		}
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		fatal("read idle", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "shutdown"), b, 0o755); err != nil {
		fatal("copy idle", err)
	}
	if err := startLinger(); err != nil {
		fatal("start linger", err)
	}
	if err := os.Chdir(dir); err != nil {
		fatal("chdir", err)
	}
	if err := syscall.PivotRoot(".", "oldroot"); err != nil {
		fatal("pivot_root", err)
	}
	if err := os.Chdir("/"); err != nil {
		fatal("chdir /", err)
	}
	// No HALTFLEET_IDLE_ROOT: the production pick. The census goes to a file in the exitrd,
	// which the test reads through /proc/PID/root.
	fatal("exec", syscall.Exec("/shutdown", []string{"/shutdown", "halt"}, []string{envCensus + "=/census"}))
}

// startLinger starts a child that outlives the census by a second and waits until it runs
// Go code: under -race the runtime re-execs itself, which must happen before the pivot.
func startLinger() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	linger := exec.Command(os.Args[0])
	linger.Env = []string{envLinger + "=1"}
	linger.ExtraFiles = []*os.File{w}
	err = linger.Start()
	w.Close()
	if err != nil {
		return err
	}
	_, err = r.Read(make([]byte, 1))
	return err
}
