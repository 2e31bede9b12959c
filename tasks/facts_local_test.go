package tasks

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/internal/testenv"
	"github.com/haltfleet/haltfleet/runner"
)

// shellRunner runs commands on this machine through a chosen POSIX shell: the directory
// shDir holds an "sh" that comes first on PATH, so Gather's own `sh -c` runs that shell
// too. wrap, if set, is prepended to the argv (e.g. unshare). It counts Exec calls.
type shellRunner struct {
	shDir string
	wrap  []string
	calls atomic.Int32
}

var _ runner.Runner = (*shellRunner)(nil)

func newShellRunner(t *testing.T, shell string, wrap ...string) *shellRunner {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(shell, filepath.Join(dir, "sh")); err != nil {
		t.Fatal(err)
	}
	return &shellRunner{shDir: dir, wrap: wrap}
}

func (r *shellRunner) Name() string { return "local" }
func (r *shellRunner) Close() error { return nil }

func (r *shellRunner) Exec(ctx context.Context, cmd runner.Cmd) (runner.Result, error) {
	r.calls.Add(1)
	argv := append(append([]string{}, r.wrap...), filepath.Join(r.shDir, "sh"), "-c", cmd.Command)
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Env = append(os.Environ(), "PATH="+r.shDir+":"+os.Getenv("PATH"))
	c.Stdin = cmd.Stdin
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	res := runner.Result{Stdout: out.Bytes(), Stderr: errb.Bytes()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.ExitCode = ee.ExitCode()
		return res, &runner.CommandError{Host: r.Name(), ExitCode: res.ExitCode, Stderr: errb.String()}
	}
	return res, err
}

func (r *shellRunner) Upload(ctx context.Context, path string, content io.Reader, mode fs.FileMode, sudo bool) error {
	return errors.New("shellRunner: upload not needed by facts")
}

func (r *shellRunner) Download(ctx context.Context, path string, sudo bool) ([]byte, error) {
	return nil, errors.New("shellRunner: download not needed by facts")
}

// kernelRelease is uname -r read by Go, independently of the script.
func kernelRelease(t *testing.T) string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}

// runNoexecHere reads /proc/self/mounts in Go: the longest mount point holding /run.
func runNoexecHere(t *testing.T) bool {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	best, noexec := -1, false
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		mp := f[1]
		if (mp == "/" || mp == "/run" || strings.HasPrefix("/run", mp+"/")) && len(mp) >= best {
			best, noexec = len(mp), hasOption(f[3], "noexec")
		}
	}
	return noexec
}

func gatherWith(t *testing.T, r *shellRunner) Facts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f, err := Gather(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if n := r.calls.Load(); n != 1 {
		t.Errorf("Gather made %d Exec calls, want exactly 1", n)
	}
	for _, w := range f.Warnings {
		if strings.Contains(w, "ended early") {
			t.Errorf("script did not reach its end marker: %v", f.Warnings)
		}
	}
	return f
}

func validInit(s string) bool {
	switch s {
	case InitSystemd, InitSysvinit, InitOpenRC, InitRunit, InitBusybox, InitUnknown:
		return true
	}
	return false
}

// TestGatherOnThisMachine runs the real script here, through /bin/sh, and checks it
// against what Go reads itself.
func TestGatherOnThisMachine(t *testing.T) {
	if _, err := os.Stat("/etc/debian_version"); err != nil {
		testenv.Missing(t, "a Debian host (the expected values are Debian's)")
	}
	f := gatherWith(t, newShellRunner(t, "/bin/sh"))
	t.Logf("facts: %+v", f)
	if f.Host != "local" {
		t.Errorf("Host = %q", f.Host)
	}
	if f.Distro.ID != "debian" || f.Distro.Source != "/etc/os-release" {
		t.Errorf("Distro = %+v", f.Distro)
	}
	if f.Arch != "amd64" {
		t.Errorf("Arch = %q (machine %q)", f.Arch, f.Machine)
	}
	if want := kernelRelease(t); f.Kernel != want {
		t.Errorf("Kernel = %q, want %q", f.Kernel, want)
	}
	if !validInit(f.Init) {
		t.Errorf("Init = %q", f.Init)
	}
	comm, _ := os.ReadFile("/proc/1/comm")
	if f.PID1 != strings.TrimSpace(string(comm)) {
		t.Errorf("PID1 = %q, want %q", f.PID1, comm)
	}
	if os.Geteuid() == 0 && f.Sudo != SudoRoot {
		t.Errorf("Sudo = %q as root", f.Sudo)
	}
	if _, err := os.Stat("/.dockerenv"); err == nil && f.Container == "" {
		t.Errorf("/.dockerenv exists but Container is empty")
	}
	if want := runNoexecHere(t); f.RunNoexec != want {
		t.Errorf("RunNoexec = %v, want %v", f.RunNoexec, want)
	}
	if p, err := exec.LookPath("nft"); err == nil && f.Firewall.Nft != p && f.Firewall.Nft == "" {
		t.Errorf("nft at %s not found by the script", p)
	}
}

// TestScriptUnderEachShell proves the script is plain POSIX sh: dash, busybox ash and
// bash (as sh, so in POSIX mode) all run it to the end and agree on the facts.
func TestScriptUnderEachShell(t *testing.T) {
	base := gatherWith(t, newShellRunner(t, "/bin/sh"))
	for _, sh := range []string{"dash", "busybox", "bash"} {
		t.Run(sh, func(t *testing.T) {
			path := testenv.NeedCommand(t, sh)
			assertShell(t, newShellRunner(t, path), sh)
			f := gatherWith(t, newShellRunner(t, path))
			type key struct {
				id, kernel, arch, init, pid1, container, sudo, backend string
				noexec                                                 bool
			}
			k := func(f Facts) key {
				return key{f.Distro.ID, f.Kernel, f.Arch, f.Init, f.PID1, f.Container, f.Sudo, f.Firewall.Backend, f.RunNoexec}
			}
			if k(f) != k(base) {
				t.Errorf("%s disagrees with /bin/sh:\n got %+v\nwant %+v", sh, k(f), k(base))
			}
		})
	}
}

// TestGatherInFreshNamespaces runs the script as the child of PID 1 in a new PID, mount
// and network namespace: PID 1 is a shell, only loopback exists. Detection must cope.
func TestGatherInFreshNamespaces(t *testing.T) {
	testenv.NeedRoot(t)
	unshare := testenv.NeedCommand(t, "unshare")
	r := newShellRunner(t, "/bin/sh", unshare, "-n", "-p", "-f", "--mount-proc")
	f := gatherWith(t, r)
	t.Logf("facts: %+v", f)
	if f.Init != InitUnknown || f.PID1 != "sh" {
		t.Errorf("Init %q PID1 %q, want unknown/sh (the namespace's PID 1 is the shell)", f.Init, f.PID1)
	}
	if f.Distro.ID != "debian" || f.Kernel == "" || f.Arch == "" {
		t.Errorf("host facts lost in the namespace: %+v", f)
	}
	if len(f.FiniteAddrs) != 0 {
		t.Errorf("a fresh netns has no leased addresses: %+v", f.FiniteAddrs)
	}
	for _, w := range f.Warnings {
		if strings.Contains(w, "address lifetimes unknown") {
			t.Errorf("ip addr gave nothing in the netns: %v", f.Warnings)
		}
	}
}

// assertShell checks that the runner's nested `sh -c` really is the shell under test,
// so a PATH mistake cannot turn three shells into three runs of dash.
func assertShell(t *testing.T, r *shellRunner, sh string) {
	t.Helper()
	res, err := r.Exec(context.Background(), runner.Cmd{Command: `sh -c 'readlink /proc/$$/exe; true'`})
	if err != nil {
		t.Fatal(err)
	}
	got := filepath.Base(strings.TrimSpace(string(res.Stdout)))
	if got != sh {
		t.Fatalf("nested sh is %q, want %q", got, sh)
	}
}

// BenchmarkGatherLocal is the cost of one facts round trip minus the network: the
// script's run time on this host plus parsing.
func BenchmarkGatherLocal(b *testing.B) {
	dir := b.TempDir()
	if err := os.Symlink("/bin/sh", filepath.Join(dir, "sh")); err != nil {
		b.Fatal(err)
	}
	r := &shellRunner{shDir: dir}
	for b.Loop() {
		if _, err := Gather(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseFacts(b *testing.B) {
	out, err := os.ReadFile(filepath.Join("testdata", "facts", "ubuntu2204", "dump.txt"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(out)))
	for b.Loop() {
		if _, err := parseFacts(out); err != nil {
			b.Fatal(err)
		}
	}
}
