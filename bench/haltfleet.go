package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// ProfileEnv, when set, names the file the bench binary (re-executed as haltfleet) writes
// a CPU profile to; see cmd/haltfleet-bench.
const ProfileEnv = "HFBENCH_CPUPROFILE"

// ProfiledArg, as the first argument of Config.Profile, makes it run haltfleet's CLI
// with the remaining arguments.
const ProfiledArg = "__haltfleet-profiled"

// hfRun is one execution of the haltfleet binary.
type hfRun struct {
	wall     time.Duration
	code     int
	rssKiB   int64
	cpu      time.Duration
	sessions map[string]int // per host: commands (one session each) plus one SFTP channel if used
	note     string
}

// runHaltfleet runs argv (argv[0] the binary), with stdout and stderr into logBase.out/.err,
// and counts the sessions its -v lines announce.
func runHaltfleet(ctx context.Context, argv []string, env []string, logBase string) (hfRun, error) {
	var r hfRun
	out, err := os.Create(logBase + ".out")
	if err != nil {
		return r, err
	}
	defer out.Close()
	errf, err := os.Create(logBase + ".err")
	if err != nil {
		return r, err
	}
	defer errf.Close()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr, cmd.Env = out, errf, append(os.Environ(), env...)
	// Interrupt first, as a user would: haltfleet then stops gracefully.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	start := time.Now()
	err = cmd.Run()
	r.wall = time.Since(start)
	if cmd.ProcessState != nil {
		r.code = cmd.ProcessState.ExitCode()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.rssKiB = ru.Maxrss
			r.cpu = rusageCPU(ru)
		}
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return r, err
	}
	if _, err := errf.Seek(0, io.SeekStart); err != nil {
		return r, err
	}
	r.sessions = countSessions(errf)
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		return r, err
	}
	r.note = hfNote(out)
	return r, ctx.Err()
}

var (
	execLine = regexp.MustCompile(`^(\S+): \$ `)
	sftpLine = regexp.MustCompile(`^(\S+): \$ sftp (put|get) `)
)

// countSessions reads haltfleet -v output: every "$ command" line is one SSH session;
// SFTP transfers share one subsystem session per connection, counted once per host.
func countSessions(r io.Reader) map[string]int {
	m := map[string]int{}
	sftp := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if g := sftpLine.FindStringSubmatch(line); g != nil {
			if !sftp[g[1]] {
				sftp[g[1]] = true
				m[g[1]]++
			}
		} else if g := execLine.FindStringSubmatch(line); g != nil {
			m[g[1]]++
		}
	}
	return m
}

// exitOK says whether a haltfleet exit code is a success for cmd: plan and audit exit 2
// to report changes or drift, which is a result, not a failure.
func exitOK(cmd string, code int) bool {
	return code == 0 || (code == 2 && (cmd == "plan" || cmd == "audit"))
}

func codeErr(cmd string, code int, logBase string) error {
	if exitOK(cmd, code) {
		return nil
	}
	return fmt.Errorf("haltfleet %s: exit %d (see %s.err)", cmd, code, logBase)
}

// hfNote is haltfleet's own summary line from stdout: the recap of up, the totals of
// plan and audit, the host count of facts.
func hfNote(r io.Reader) string {
	var note string
	hosts := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "recap: "), strings.HasPrefix(line, "plan: "), strings.HasPrefix(line, "audit: "):
			note = line
		case strings.HasPrefix(line, "== h"):
			hosts++
		}
	}
	if note == "" && hosts > 0 {
		note = fmt.Sprintf("%d hosts", hosts)
	}
	return note
}

func rusageCPU(ru *syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// selfCPU is this process's user+system time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return rusageCPU(&ru)
}

// childrenCPU is the user+system time of every child this process has reaped.
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return rusageCPU(&ru)
}
