package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/internal/testenv"
)

// Environment the test binary reads when it re-runs itself as a helper process.
const (
	envSetup  = "HALTFLEET_IDLE_TEST_SETUP"  // path of the idle binary to exec as PID 1 after staging
	envLinger = "HALTFLEET_IDLE_TEST_LINGER" // be a child that outlives the census by a second
	envPivot  = "HALTFLEET_IDLE_TEST_PIVOT"  // stage like systemd-shutdown: pivot into this dir
)

func TestMain(m *testing.M) {
	if bin := os.Getenv(envSetup); bin != "" {
		if dir := os.Getenv(envPivot); dir != "" {
			stagePivot(bin, dir)
		} else {
			stageExitrd(bin)
		}
		os.Exit(3) // both exec the idle init; they return only on failure
	}
	if os.Getenv(envLinger) != "" {
		os.NewFile(3, "ready").Write([]byte{1})
		time.Sleep(time.Second)
		os.Exit(0)
	}
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
	out  []byte
}

// idleBinary builds the real static binary once, with the same flags as go:generate.
func idleBinary(t *testing.T) string {
	t.Helper()
	goTool := testenv.NeedCommand(t, "go")
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "haltfleet-idle-test")
		if built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "haltfleet-idle")
		cmd := exec.Command(goTool, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", built.bin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		built.out, built.err = cmd.CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("build: %v\n%s", built.err, built.out)
	}
	return built.bin
}

// waitCensus polls for the census line the idle init writes once.
func waitCensus(t *testing.T, path string, exited <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && bytes.HasSuffix(b, []byte("\n")) {
			return strings.TrimSuffix(string(b), "\n")
		}
		select {
		case err := <-exited:
			t.Fatalf("idle init exited before its census: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("no census line within 30s")
	return ""
}

// startIdle starts cmd and kills it (and with it its PID namespace) at cleanup.
func startIdle(t *testing.T, cmd *exec.Cmd) <-chan error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	return exited
}

// stillAlive sends the signals an init could get and checks nobody died of them.
func stillAlive(t *testing.T, pid int, exited <-chan error) {
	t.Helper()
	for _, s := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGPWR} {
		if err := syscall.Kill(pid, s); err != nil {
			t.Fatalf("kill %v: %v", s, err)
		}
	}
	select {
	case err := <-exited:
		t.Fatalf("idle init died after SIGTERM and friends: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
}

func field(t *testing.T, line, key string) string {
	t.Helper()
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	t.Fatalf("no %s= in %q", key, line)
	return ""
}

func TestHaltAsPID1DetachesReportsAndIdles(t *testing.T) {
	testenv.NeedRoot(t)
	bin := idleBinary(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "oldroot")
	censusPath := filepath.Join(dir, "census")
	stderr := stderrFile(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envSetup+"="+bin, envRoot+"="+root, envCensus+"="+censusPath)
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	exited := startIdle(t, cmd)
	line := waitCensus(t, censusPath, exited)
	t.Logf("census: %s", line)
	pid := cmd.Process.Pid

	if !strings.HasPrefix(line, "haltfleet-idle: parked pid=1 ") {
		t.Errorf("not parked as PID 1: %q", line)
	}
	// The staging helper's lingering child is the one other process; census is taken at once.
	if got := field(t, line, "others"); got != "1" {
		t.Errorf("others=%s, want 1 (the lingering child)", got)
	}
	// 9 mounts; the hidden one fails by name but leaves with the mount under it.
	if got := field(t, line, "detached"); got != "8" {
		t.Errorf("detached=%s, want 8 (9 mounts, one hidden under a stack)", got)
	}
	if got := field(t, line, "failed"); got != "0" {
		t.Errorf("failed=%s, want 0", got)
	}
	if disks := field(t, line, "disks"); strings.Contains(disks, root) {
		t.Errorf("a disk under the fake /oldroot is still mounted: %s", disks)
	}
	// The kernel's view of its mount namespace, read from outside.
	mi, err := os.ReadFile(filepath.Join("/proc", itoa(pid), "mountinfo"))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := parseMountinfo(mi)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if underPick(root)(m.point) {
			t.Errorf("still mounted in the idle's namespace: %s (%s)", m.point, m.fstype)
		}
	}
	// And nothing leaked into ours.
	if self, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(self, []byte(root)) {
		t.Errorf("the fake /oldroot shows up in the test's own mount namespace")
	}

	stillAlive(t, pid, exited)

	// The lingering child exits after a second: init must reap it, leaving no zombie.
	deadline := time.Now().Add(10 * time.Second)
	for len(childrenOf(pid)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("children of the idle init not reaped: %v", childrenOf(pid))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if b, _ := os.ReadFile(stderr.Name()); len(b) > 0 {
		t.Errorf("stderr: %s", b)
	}
}

// The production path: after a pivot like systemd's, everything but /, /proc and /dev goes.
func TestHaltAfterPivotLeavesNoDisk(t *testing.T) {
	testenv.NeedRoot(t)
	bin := idleBinary(t)
	dir := t.TempDir()
	stderr := stderrFile(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envSetup+"="+bin, envPivot+"="+dir)
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	exited := startIdle(t, cmd)
	pid := cmd.Process.Pid
	line := waitCensus(t, filepath.Join("/proc", itoa(pid), "root", "census"), exited)
	t.Logf("census: %s", line)
	if !strings.HasPrefix(line, "haltfleet-idle: parked pid=1 others=1 ") {
		t.Errorf("census %q, want PID 1 with the lingering child as the only other", line)
	}
	if got := field(t, line, "disks"); got != "none" {
		t.Errorf("disks=%s, want none", got)
	}
	if got := field(t, line, "failed"); got != "0" {
		t.Errorf("failed=%s, want 0", got)
	}
	if n, _ := atoi(field(t, line, "detached")); n < 10 {
		t.Errorf("detached=%d: /oldroot, /sys, /run and what is below them are more than that", n)
	}
	mi, err := os.ReadFile(filepath.Join("/proc", itoa(pid), "mountinfo"))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := parseMountinfo(mi)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if exitrdPick(m.point) || m.disk() {
			t.Errorf("still mounted: %s (%s from %s)", m.point, m.fstype, m.source)
		}
	}
	stillAlive(t, pid, exited)
	if b, _ := os.ReadFile(stderr.Name()); len(b) > 0 {
		t.Errorf("stderr: %s", b)
	}
}

// stderrFile collects a child's stderr in a file: the child writes it directly, no copying
// goroutine to race with while the child runs forever.
func stderrFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// childrenOf lists processes (zombies included) whose parent is pid.
func childrenOf(pid int) []string {
	var kids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == itoa(pid) {
			kids = append(kids, e.Name()+"("+f[0]+")")
		}
	}
	return kids
}

func TestHaltAsChildReportsAndHolds(t *testing.T) {
	bin := idleBinary(t)
	censusPath := filepath.Join(t.TempDir(), "census")
	cmd := exec.Command(bin, "halt")
	cmd.Env = []string{envCensus + "=" + censusPath, envRoot + "=/must/not/matter"}
	exited := startIdle(t, cmd)
	line := waitCensus(t, censusPath, exited)
	t.Logf("census: %s", line)
	if want := "haltfleet-idle: parked pid=" + itoa(cmd.Process.Pid) + " "; !strings.HasPrefix(line, want) {
		t.Errorf("census %q, want prefix %q", line, want)
	}
	if n, ok := atoi(field(t, line, "others")); !ok || n < 1 {
		t.Errorf("others=%s: at least this test runs besides init", field(t, line, "others"))
	}
	if got := field(t, line, "detached") + "/" + field(t, line, "failed"); got != "0/0" {
		t.Errorf("detached/failed = %s: a child must not unmount anything", got)
	}
	if field(t, line, "mounts") == "unknown" {
		t.Error("mounts unknown although /proc is mounted")
	}
	stillAlive(t, cmd.Process.Pid, exited)
}

func TestSelftestOnThisHost(t *testing.T) {
	testenv.NeedRoot(t)
	bin := idleBinary(t)
	before, _ := os.ReadFile("/proc/self/mountinfo")
	out, err := exec.Command(bin, "--selftest").CombinedOutput()
	if err != nil {
		t.Fatalf("selftest: %v\n%s", err, out)
	}
	checkSelftest(t, string(out))
	after, _ := os.ReadFile("/proc/self/mountinfo")
	if bytes.Contains(after, []byte("haltfleet-selftest")) || countLines(after) > countLines(before)+5 {
		t.Errorf("selftest left mounts behind in the host namespace:\n%s", after)
	}
}

// The engine's preferred way: unshare first; the selftest then nests its own namespaces.
func TestSelftestUnderUnshare(t *testing.T) {
	testenv.NeedRoot(t)
	unshare := testenv.NeedCommand(t, "unshare")
	bin := idleBinary(t)
	out, err := exec.Command(unshare, "--pid", "--fork", "--mount", "--propagation", "private", bin, "--selftest").CombinedOutput()
	if err != nil {
		t.Fatalf("selftest: %v\n%s", err, out)
	}
	checkSelftest(t, string(out))
}

func checkSelftest(t *testing.T, out string) {
	t.Helper()
	t.Logf("%s", out)
	line := strings.TrimSuffix(out, "\n")
	if strings.Contains(line, "\n") || !strings.HasPrefix(line, "selftest ok: haltfleet-idle: parked pid=1 others=0 ") {
		t.Fatalf("selftest output %q", out)
	}
	if got := field(t, line, "detached") + "/" + field(t, line, "failed") + "/" + field(t, line, "reaped"); got != "5/0/2" {
		t.Errorf("detached/failed/reaped = %s, want 5/0/2", got)
	}
}

func countLines(b []byte) int { return bytes.Count(b, []byte("\n")) }
