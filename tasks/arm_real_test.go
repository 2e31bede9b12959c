package tasks

import (
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/internal/testenv"
	"github.com/haltfleet/haltfleet/inventory"
	"github.com/haltfleet/haltfleet/runner"
)

// mountNSRunner runs every command inside the mount and network namespaces of a holder
// process whose /run is a private tmpfs: a real sh, real mount/findmnt/sha256sum and the
// real idle init, without touching this machine's /run.
type mountNSRunner struct {
	runner.Runner
	pid int
}

func (m mountNSRunner) wrap(cmd string) string {
	return "nsenter -t " + strconv.Itoa(m.pid) + " -m -n sh -c " + runner.Quote(cmd)
}

func (m mountNSRunner) Exec(ctx context.Context, cmd runner.Cmd) (runner.Result, error) {
	cmd.Command = m.wrap(cmd.Command)
	cmd.Sudo = false
	return m.Runner.Exec(ctx, cmd)
}

func (m mountNSRunner) Upload(ctx context.Context, p string, content io.Reader, mode fs.FileMode, sudo bool) error {
	_, err := m.Exec(ctx, runner.Cmd{Command: "cat > " + runner.Quote(p) + " && chmod " + strconv.FormatUint(uint64(mode.Perm()), 8) + " " + runner.Quote(p), Stdin: content})
	return err
}

func newMountNSRunner(t *testing.T) mountNSRunner {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "unshare", "nsenter", "findmnt", "sha256sum", "base64", "timeout")
	holder := exec.Command("unshare", "-m", "-n", "--propagation", "private", "sh", "-c",
		"mount -t tmpfs -o mode=0755 hf-test-run /run && echo ready && exec sleep 600")
	out, _ := holder.StdoutPipe()
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	buf := make([]byte, 6)
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("holder did not start: %q %v", buf, err)
	}
	return mountNSRunner{Runner: runner.NewLocal(runner.LocalOptions{Name: "nsfw"}), pid: holder.Process.Pid}
}

// TestSystemdExitrdRealMount arms the systemd exitrd part for real (tmpfs mount, the real
// idle binary uploaded) inside a private mount namespace, then Verify reads it back with
// the same commands a host gets, including the idle init's own --selftest.
func TestSystemdExitrdRealMount(t *testing.T) {
	if idleSHA256(runtime.GOARCH) == "" {
		t.Skipf("no idle init for %s", runtime.GOARCH)
	}
	r := newMountNSRunner(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := Facts{Host: "nsfw", Init: InitSystemd, Arch: runtime.GOARCH, Firewall: Firewall{Nft: "/usr/sbin/nft"}}
	s := inventory.Settings{Halt: true}

	chs, err := PlanArm(ctx, r, "nsfw", f, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(chs) != 2 || !strings.Contains(chs[0].Command, "mount -t tmpfs") || chs[1].Path != ExitrdShutdown {
		t.Fatalf("plan on a bare /run:\n%s", renderPlan(chs))
	}
	if err := Apply(ctx, r, chs, ApplyEnv{}); err != nil {
		t.Fatal(err)
	}
	again, err := PlanArm(ctx, r, "nsfw", f, s)
	if err != nil || len(again) != 0 {
		t.Fatalf("second plan: %v\n%s", err, renderPlan(again))
	}
	rep, err := Verify(ctx, r, f, s, "")
	for _, c := range rep.Checks {
		t.Logf("%-15s ok=%v %s", c.Name, c.OK, c.Detail)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"exitrd", "idle init", "idle self-test", "armed", "addresses"} {
		found := false
		for _, c := range rep.Checks {
			found = found || (c.Name == want && c.OK)
		}
		if !found {
			t.Errorf("check %q missing or failed", want)
		}
	}

	// a noexec exitrd is caught by the plan (remount) and by Verify
	if _, err := r.Exec(ctx, runner.Cmd{Command: "mount -o remount,noexec " + ExitrdDir}); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(ctx, r, f, s, ""); err == nil {
		t.Fatal("Verify passed with a noexec exitrd")
	}
	fix, err := PlanArm(ctx, r, "nsfw", f, s)
	if err != nil || len(fix) != 1 || !strings.Contains(fix[0].Command, "remount,exec") {
		t.Fatalf("plan for noexec: %v\n%s", err, renderPlan(fix))
	}
	if err := Apply(ctx, r, fix, ApplyEnv{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(ctx, r, f, s, ""); err != nil {
		t.Fatalf("after remount: %v", err)
	}
}

// TestArmReadRealFiles reads this machine's files through the real state script: the
// base64 round trip must be byte-exact, and absent files must read as absent.
func TestArmReadRealFiles(t *testing.T) {
	testenv.NeedCommand(t, "sh", "base64")
	r := runner.NewLocal(runner.LocalOptions{})
	rd := newArmRead()
	dir := t.TempDir()
	odd := dir + "/odd 'name'"
	content := "no final newline\x00\xff binary \n@@haltfleet-arm-0000 fake\nend"
	if err := os.WriteFile(odd, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	rd.file(odd)
	rd.file(dir + "/absent")
	rd.cmd("echo", "printf 'a\\nb\\n'")
	st, err := rd.run(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := st.file(odd); !got.Exists || got.Content != content {
		t.Errorf("odd file read as %+v", got)
	}
	if got, ok := st.file(dir + "/absent"); !ok || got.Exists {
		t.Errorf("absent file read as %+v (known %v)", got, ok)
	}
	if st.section("echo") != "a\nb" {
		t.Errorf("command section %q", st.section("echo"))
	}
}
