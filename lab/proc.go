package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Exec runs argv inside network namespace ns (as `ip netns exec` does) and returns
// its combined output; for tests and probes' plumbing.
func Exec(ctx context.Context, ns string, argv ...string) ([]byte, error) {
	full := append([]string{"ip", "netns", "exec", ns}, argv...)
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: exec %s: %w: %s", ns, strings.Join(argv, " "), err, tail(string(out), 800))
	}
	return out, nil
}

// spawn starts a long-lived process that outlives the caller (own session, no
// inherited terminal) and returns its pid. Output goes to logFile.
func spawn(logFile string, argv ...string) (int, error) {
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", argv[0], err)
	}
	pid := cmd.Process.Pid
	// Reap it if it dies while we still run, so alive() does not see a zombie.
	go func() { _ = cmd.Wait() }()
	return pid, nil
}

// alive reports whether pid runs a program whose name contains want (so a reused
// pid is never mistaken for ours).
func alive(pid int, want string) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// stat: "pid (comm) S ..."; a zombie counts as dead.
	s := string(b)
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < open || close+2 >= len(s) {
		return false
	}
	if s[close+2] == 'Z' {
		return false
	}
	comm := s[open+1 : close]
	return strings.Contains(comm, want) || strings.Contains(want, comm)
}

// stop kills pid (if it is still ours) and waits up to 10s for it to go.
func stop(pid int, want string) error {
	if !alive(pid, want) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid, want) {
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d (%s) survived SIGKILL", pid, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
