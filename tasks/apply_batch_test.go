package tasks

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/internal/testenv"
	"github.com/haltfleet/haltfleet/runner"
)

// withRunDir points RunDir (where a batch stages its payloads) at a fresh directory.
func withRunDir(t *testing.T, dir string) {
	old := RunDir
	RunDir = dir
	t.Cleanup(func() { RunDir = old })
}

// leftovers lists temp files a batch might leave: staging files and .NAME.haltfleet.* temps.
func leftovers(t *testing.T, dirs ...string) []string {
	var out []string
	for _, d := range dirs {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if strings.Contains(e.Name(), ".haltfleet.") || strings.HasPrefix(e.Name(), "apply.") {
				out = append(out, filepath.Join(d, e.Name()))
			}
		}
	}
	return out
}

func allBytes() string {
	b := make([]byte, 0, 600)
	for i := range 512 {
		b = append(b, byte(i))
	}
	return string(b) + "\nHFAPPLY-0000 done 9\n\x00" // a forged marker and a trailing NUL
}

// TestApplyBatchLocal runs a real batch with sh on this machine: exact bytes (binary, no
// final newline, empty), modes set before the rename, owner root, order, no temp files
// left, and the whole batch in ONE Exec.
func TestApplyBatchLocal(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "sh", "mktemp", "tail", "head", "wc", "sha256sum")
	dir := t.TempDir()
	odd := filepath.Join(dir, "it's a dir")
	if err := os.Mkdir(odd, 0o755); err != nil {
		t.Fatal(err)
	}
	withRunDir(t, filepath.Join(dir, "run"))
	old := filepath.Join(dir, "old.conf")
	if err := os.WriteFile(old, []byte("old content that is longer than the new one\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(dir, "gone")
	if err := os.WriteFile(gone, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	order := filepath.Join(dir, "order")
	changes := []Change{
		{Kind: KindFile, Path: filepath.Join(dir, "binary"), New: allBytes(), Mode: 0o600, Summary: "binary"},
		{Kind: KindCommand, Command: "echo one >> " + runner.Quote(order) + "; echo noise >&2", Summary: "cmd one"},
		{Kind: KindFile, Path: filepath.Join(odd, "no newline $(x) `y`"), New: "last line has no newline", Mode: 0o755, Summary: "no newline"},
		{Kind: KindFile, Path: filepath.Join(dir, "empty"), New: "", Mode: 0o640, Summary: "empty"},
		{Kind: KindFile, Path: old, New: "new\n", Summary: "overwrite (default mode 0644)"},
		{Kind: KindRemove, Path: gone, Summary: "remove"},
		{Kind: KindRemove, Path: filepath.Join(dir, "never-existed"), Summary: "remove absent"},
		{Kind: KindHalt, Summary: "halt is not Apply's"},
		{Kind: KindCommand, Command: "test ! -e " + runner.Quote(gone) + " && cat " + runner.Quote(old) + " >> " + runner.Quote(order), Summary: "cmd two sees the earlier changes"},
	}
	want := map[string]struct {
		content string
		mode    os.FileMode
	}{
		changes[0].Path: {allBytes(), 0o600},
		changes[2].Path: {"last line has no newline", 0o755},
		changes[3].Path: {"", 0o640},
		old:             {"new\n", 0o644},
		order:           {"one\nnew\n", 0o644},
	}
	cr := &countingRunner{Runner: runner.NewLocal(runner.LocalOptions{Name: "local"})}
	var applied []string
	if err := Apply(context.Background(), cr, changes, ApplyEnv{OnChange: func(c Change) { applied = append(applied, c.Summary) }}); err != nil {
		t.Fatal(err)
	}
	if cr.execs != 1 || cr.uploads != 0 || cr.downlds != 0 {
		t.Errorf("round trips: %d exec, %d upload, %d download; want one exec", cr.execs, cr.uploads, cr.downlds)
	}
	for i, c := range changes {
		if i >= len(applied) || applied[i] != c.Summary {
			t.Fatalf("OnChange order %q", applied)
		}
	}
	for p, w := range want {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		got, _ := os.ReadFile(p)
		if string(got) != w.content {
			t.Errorf("%s: content %q, want %q", p, got, w.content)
		}
		if p != order && (fi.Mode().Perm() != w.mode || fi.Sys().(*syscall.Stat_t).Uid != 0) {
			t.Errorf("%s: mode %v uid %d, want %v root", p, fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Uid, w.mode)
		}
	}
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Errorf("removed file still there: %v", err)
	}
	if l := leftovers(t, dir, odd, RunDir); len(l) > 0 {
		t.Errorf("temp files left: %q", l)
	}
	if s := cr.scripts[0]; strings.Contains(s, "last line has no newline") || strings.Contains(s, "old content") {
		t.Errorf("a payload is in the command line:\n%s", s)
	}
}

// TestApplyBatchStopsAtFirstFailure: the failing change is named with its own stderr and
// exit code, earlier ones are reported, later ones never run.
func TestApplyBatchStopsAtFirstFailure(t *testing.T) {
	testenv.NeedRoot(t)
	dir := t.TempDir()
	withRunDir(t, filepath.Join(dir, "run"))
	after := filepath.Join(dir, "after")
	for _, tc := range []struct {
		name, failing string
		bad           Change
		code          int
		stderr        string
	}{
		{"command", "exits 7", Change{Kind: KindCommand, Command: "echo oops >&2; exit 7", Summary: "exits 7"}, 7, "oops"},
		{"file in a missing directory", "write nowhere",
			Change{Kind: KindFile, Path: filepath.Join(dir, "missing", "f"), New: "x", Summary: "write nowhere"}, 1, "mktemp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := filepath.Join(dir, "first-"+tc.name)
			changes := []Change{
				{Kind: KindFile, Path: first, New: "1\n", Summary: "first"},
				{Kind: KindCommand, Command: "echo unrelated-noise >&2", Summary: "noisy"},
				tc.bad,
				{Kind: KindFile, Path: after, New: "never", Summary: "after"},
				{Kind: KindCommand, Command: "touch " + runner.Quote(after), Summary: "after too"},
			}
			for i := range changes {
				changes[i].Host, changes[i].Stage = "fw9", "arm"
			}
			var applied []string
			err := Apply(context.Background(), runner.NewLocal(runner.LocalOptions{Name: "fw9"}), changes,
				ApplyEnv{OnChange: func(c Change) { applied = append(applied, c.Summary) }})
			var ce *runner.CommandError
			if err == nil || !errors.As(err, &ce) {
				t.Fatalf("got %v", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "fw9: arm: "+tc.failing+": ") || ce.ExitCode != tc.code || !strings.Contains(ce.Stderr, tc.stderr) {
				t.Errorf("error %q (exit %d, stderr %q)", msg, ce.ExitCode, ce.Stderr)
			}
			if strings.Contains(msg, "unrelated-noise") {
				t.Errorf("an earlier step's stderr leaked into the error: %q", msg)
			}
			if strings.Join(applied, ",") != "first,noisy" {
				t.Errorf("applied %q", applied)
			}
			if b, _ := os.ReadFile(first); string(b) != "1\n" {
				t.Errorf("first change not made: %q", b)
			}
			if _, err := os.Stat(after); !os.IsNotExist(err) {
				t.Error("a change after the failure ran")
			}
			if l := leftovers(t, dir, RunDir); len(l) > 0 {
				t.Errorf("temp files left: %q", l)
			}
		})
	}
}

// streamMangler changes the payload stream on its way to the host.
type streamMangler struct {
	runner.Runner
	mangle func([]byte) []byte
}

func (m streamMangler) Exec(ctx context.Context, cmd runner.Cmd) (runner.Result, error) {
	if cmd.Stdin != nil {
		b, err := io.ReadAll(cmd.Stdin)
		if err != nil {
			return runner.Result{}, err
		}
		cmd.Stdin = bytes.NewReader(m.mangle(b))
	}
	return m.Runner.Exec(ctx, cmd)
}

// TestApplyBatchDamagedStream: a short stream changes nothing at all (checked before the
// first step), and a corrupted idle init is refused before it replaces anything.
func TestApplyBatchDamagedStream(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "sha256sum")
	if idleSHA256(runtime.GOARCH) == "" {
		t.Skipf("no idle init for %s", runtime.GOARCH)
	}
	dir := t.TempDir()
	withRunDir(t, filepath.Join(dir, "run"))
	conf, idlePath := filepath.Join(dir, "conf"), filepath.Join(dir, "idle")
	if err := os.WriteFile(idlePath, []byte("previous idle"), 0o755); err != nil {
		t.Fatal(err)
	}
	changes := []Change{
		{Host: "fw1", Stage: "arm", Kind: KindFile, Path: conf, New: "conf\n", Summary: "conf"},
		{Host: "fw1", Stage: "arm", Kind: KindFile, Path: idlePath, Key: idleKeyPrefix + runtime.GOARCH, Summary: "idle"},
	}
	local := runner.NewLocal(runner.LocalOptions{Name: "fw1"})

	short := streamMangler{local, func(b []byte) []byte { return b[:len(b)-10] }}
	var applied []Change
	err := Apply(context.Background(), short, changes, ApplyEnv{OnChange: func(c Change) { applied = append(applied, c) }})
	if err == nil || !strings.HasPrefix(err.Error(), "fw1: arm: conf: ") || !strings.Contains(err.Error(), "payload stream") {
		t.Fatalf("short stream: %v", err)
	}
	if _, serr := os.Stat(conf); !os.IsNotExist(serr) || len(applied) != 0 {
		t.Errorf("a short stream changed something (applied %d)", len(applied))
	}

	flip := streamMangler{local, func(b []byte) []byte { b[len(b)-100] ^= 1; return b }}
	err = Apply(context.Background(), flip, changes, ApplyEnv{OnChange: func(c Change) { applied = append(applied, c) }})
	if err == nil || !strings.HasPrefix(err.Error(), "fw1: arm: idle: ") || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("flipped bit: %v", err)
	}
	if b, _ := os.ReadFile(idlePath); string(b) != "previous idle" {
		t.Error("a corrupt idle init replaced the old one")
	}
	if len(applied) != 1 || applied[0].Summary != "conf" {
		t.Errorf("applied %+v", applied)
	}
	if l := leftovers(t, dir, RunDir); len(l) > 0 {
		t.Errorf("temp files left: %q", l)
	}

	// undamaged, the same plan lands byte-exact
	if err := Apply(context.Background(), local, changes, ApplyEnv{}); err != nil {
		t.Fatal(err)
	}
	bin, _ := idleBinary(runtime.GOARCH)
	if got, _ := os.ReadFile(idlePath); !bytes.Equal(got, bin) {
		t.Error("idle init not byte-exact")
	}
}

// TestApplyBatchThroughSudo sends the payloads through the runner's become path (sudo
// to nobody, the stream held back until sudo let the shell run).
func TestApplyBatchThroughSudo(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "sudo")
	if err := exec.Command("sudo", "-n", "-u", "nobody", "true").Run(); err != nil {
		testenv.Missing(t, "sudo -u nobody: %v", err)
	}
	dir, err := os.MkdirTemp("", "hf-apply-sudo-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	withRunDir(t, filepath.Join(dir, "run"))
	var logged []string
	r := runner.NewLocal(runner.LocalOptions{Name: "fw1", BecomeUser: "nobody", Log: func(_, c string) { logged = append(logged, c) }})
	f := filepath.Join(dir, "f")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = Apply(ctx, r, []Change{
		{Kind: KindFile, Path: f, New: allBytes(), Mode: 0o640, Summary: "binary"},
		{Kind: KindCommand, Command: "id -un > " + runner.Quote(f+".who"), Summary: "who"},
	}, ApplyEnv{})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(f); string(b) != allBytes() {
		t.Error("payload damaged through sudo")
	}
	if b, _ := os.ReadFile(f + ".who"); strings.TrimSpace(string(b)) != "nobody" {
		t.Errorf("ran as %q, want nobody (through sudo)", b)
	}
	if len(logged) != 1 || strings.Contains(logged[0], "HFAPPLY-0000") {
		t.Errorf("logged %d commands, or a payload in the log: %q", len(logged), logged)
	}
}

// TestApplyBatchSysctlNetns sets sysctls for real in a private network namespace (so
// this machine's values are untouched), with a value containing a space.
func TestApplyBatchSysctlNetns(t *testing.T) {
	testenv.NeedCommand(t, "sysctl")
	r := newMountNSRunner(t)
	ctx := context.Background()
	cr := &countingRunner{Runner: r}
	var applied int
	err := Apply(ctx, cr, []Change{
		{Kind: KindSysctl, Key: "net.ipv4.ip_forward", New: "1", Summary: "fwd"},
		{Kind: KindSysctl, Key: "net/ipv4/ip_local_port_range", New: "40000 50000", Summary: "ports"},
		{Kind: KindFile, Path: "/run/sysctl-test.conf", New: "net.ipv4.ip_forward = 1\n", Summary: "file"},
	}, ApplyEnv{OnChange: func(Change) { applied++ }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Exec(ctx, runner.Cmd{Command: "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/ip_local_port_range /run/sysctl-test.conf"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(strings.Fields(string(res.Stdout)), " "); got != "1 40000 50000 net.ipv4.ip_forward = 1" {
		t.Errorf("read back %q", got)
	}
	if cr.execs != 1 || applied != 3 {
		t.Errorf("%d execs, %d applied", cr.execs, applied)
	}
	err = Apply(ctx, r, []Change{{Host: "nsfw", Stage: "sysctl", Kind: KindSysctl, Key: "net.ipv4.no_such_key", New: "1", Summary: "bogus"}}, ApplyEnv{})
	var ce *runner.CommandError
	if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "nsfw: sysctl: bogus: ") || ce.Stderr == "" {
		t.Errorf("unknown key: %v", err)
	}
}

// busyboxRunner runs every command with BusyBox's sh and applets only (PATH holds just
// links to busybox), as on Alpine.
type busyboxRunner struct {
	runner.Runner
	bin string
}

func (b busyboxRunner) Exec(ctx context.Context, cmd runner.Cmd) (runner.Result, error) {
	cmd.Command = "PATH=" + runner.Quote(b.bin) + " exec " + runner.Quote(b.bin+"/sh") + " -c " + runner.Quote(cmd.Command)
	return b.Runner.Exec(ctx, cmd)
}

// TestApplyBatchBusybox: the same script, binary payloads and idle hash check with
// BusyBox applets, whose head -c over-reads a pipe.
func TestApplyBatchBusybox(t *testing.T) {
	testenv.NeedRoot(t)
	bb := testenv.NeedCommand(t, "busybox")
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "mktemp", "tail", "head", "wc", "sha256sum", "chmod", "mv", "rm", "mkdir", "cat", "touch"} {
		if err := os.Symlink(bb, filepath.Join(bin, a)); err != nil {
			t.Fatal(err)
		}
	}
	withRunDir(t, filepath.Join(dir, "run"))
	var changes []Change
	for i, content := range []string{allBytes(), "no newline", "", strings.Repeat("\x00\xff", 70000), "tail\n"} {
		changes = append(changes, Change{Kind: KindFile, Path: filepath.Join(dir, "f"+string(rune('a'+i))), New: content, Mode: 0o600, Summary: "f"})
	}
	if idleSHA256(runtime.GOARCH) != "" {
		changes = append(changes, Change{Kind: KindFile, Path: filepath.Join(dir, "idle"), Key: idleKeyPrefix + runtime.GOARCH, Summary: "idle"})
	}
	changes = append(changes, Change{Kind: KindCommand, Command: "touch " + runner.Quote(filepath.Join(dir, "ran")), Summary: "cmd"})
	cr := &countingRunner{Runner: busyboxRunner{runner.NewLocal(runner.LocalOptions{}), bin}}
	if err := Apply(context.Background(), cr, changes, ApplyEnv{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		got, err := os.ReadFile(c.Path)
		want := c.New
		if c.Key != "" {
			b, _ := idleBinary(runtime.GOARCH)
			want = string(b)
		}
		if c.Kind == KindFile && (err != nil || string(got) != want) {
			t.Errorf("%s: %d bytes, want %d (%v)", c.Path, len(got), len(want), err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err != nil || cr.execs != 1 {
		t.Errorf("command: %v; %d execs", err, cr.execs)
	}
	if l := leftovers(t, dir, RunDir); len(l) > 0 {
		t.Errorf("temp files left: %q", l)
	}
}
