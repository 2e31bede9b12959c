package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/internal/testenv"
)

// The issue: "the idle init has no listener, no shell, no file it reads after the halt".

// The program links no package that could open a socket or start a process: only the
// runtime and syscall.
func TestIdleImportsNothingThatListensOrExecs(t *testing.T) {
	goTool := testenv.NeedCommand(t, "go")
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "os" || p == "os/exec" || p == "net" || strings.HasPrefix(p, "net/") || p == "plugin" || p == "os/signal" {
			t.Errorf("haltfleet-idle depends on %s", p)
		}
	}
}

// The linked binary has no socket, listen, accept or connect code, and the one exec in
// the source is the selftest re-running /proc/self/exe (never a shell, never after a halt:
// TestIdleAfterCensusOpensNothing).
func TestIdleBinaryHasNoSocketOrExecSymbols(t *testing.T) {
	goTool := testenv.NeedCommand(t, "go")
	bin := filepath.Join(t.TempDir(), "idle")
	build := exec.Command(goTool, "build", "-trimpath", "-o", bin, ".") // symbols kept, unlike the shipped build
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v %s", err, b)
	}
	out, err := exec.Command(goTool, "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	forbidden := regexp.MustCompile(`(?m) T (syscall\.(Socket|Bind|Listen|Accept4?|Connect|Exec|StartProcess)|net\.|os/exec\.)`)
	if m := forbidden.FindAllString(string(out), -1); len(m) > 0 {
		t.Errorf("haltfleet-idle links %v", m)
	}
	srcs, _ := filepath.Glob("*.go")
	execs := regexp.MustCompile(`syscall\.(ForkExec|Exec|StartProcess)\(([^,]*)`)
	for _, f := range srcs {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, _ := os.ReadFile(f)
		for _, m := range execs.FindAllStringSubmatch(string(src), -1) {
			if m[2] != `"/proc/self/exe"` {
				t.Errorf("%s: %s(%s...): execs something other than itself", f, m[1], m[2])
			}
		}
	}
	if !strings.Contains(string(out), " T syscall.Reboot") {
		t.Errorf("symbol table looks wrong: no syscall.Reboot (is it stripped?)")
	}
}

// Parked as PID 1 (the harness of TestHaltAsPID1DetachesReportsAndIdles), traced from
// the census on: across a reaped child, a burst of signals and one full idle cycle, the
// idle init makes no syscall that opens, reads or writes a file, or touches the network.
func TestIdleAfterCensusOpensNothing(t *testing.T) {
	testenv.NeedRoot(t)
	strace := testenv.NeedCommand(t, "strace")
	bin := idleBinary(t)
	dir := t.TempDir()
	censusPath := filepath.Join(dir, "census")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envSetup+"="+bin, envRoot+"="+filepath.Join(dir, "oldroot"), envCensus+"="+censusPath)
	cmd.Stderr = stderrFile(t)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	exited := startIdle(t, cmd)
	waitCensus(t, censusPath, exited)
	pid := cmd.Process.Pid

	trace := filepath.Join(dir, "trace")
	st := exec.Command(strace, "-f", "-qq", "-o", trace, "-p", strconv.Itoa(pid))
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // attached
	for _, s := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGPWR} {
		syscall.Kill(pid, s)
	}
	// The staging helper's lingering child exits about a second after the census: the
	// idle reaps it; the 10s sleep of an init without children then runs once in full.
	time.Sleep(12 * time.Second)
	st.Process.Signal(syscall.SIGINT)
	st.Wait()
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	bad := regexp.MustCompile(`^(open|openat|openat2|creat|read|readv|pread64|write|writev|pwrite64|socket|connect|bind|listen|accept|accept4|sendto|sendmsg|recvfrom|recvmsg|execve|execveat|mount|umount2|reboot|clone|clone3|fork|vfork)$`)
	name := regexp.MustCompile(`^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)`)
	for _, line := range strings.Split(string(b), "\n") {
		if m := name.FindStringSubmatch(line); m != nil {
			calls[m[1]]++
			if !bad.MatchString(m[1]) {
				continue
			}
			t.Errorf("after the census: %s", line)
		}
	}
	t.Logf("syscalls after the census: %v", calls)
	if calls["wait4"] == 0 {
		t.Errorf("trace saw no wait4: the trace did not cover the idle loop")
	}
	select {
	case err := <-exited:
		t.Fatalf("idle init died under trace: %v", err)
	default:
	}
}
