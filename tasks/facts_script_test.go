package tasks

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/internal/testenv"
)

// scriptV1 is the facts script as it was before it was cut down to a handful of
// processes (45 execs here): the reference the new one must agree with.
func scriptV1(t testing.TB, nonce string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "facts", "script-v1.sh"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Replace(string(b), "NONCE", nonce, 1)
}

// runScript runs a facts script on this machine through shell, with a PATH whose "sh"
// is that shell too (awk's pipes run /bin/sh whatever we do), and returns its output.
func runScript(t testing.TB, shell, script string, wrap ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	if strings.Contains(shell, "/") {
		if err := os.Symlink(shell, filepath.Join(dir, "sh")); err != nil {
			t.Fatal(err)
		}
	}
	argv := append(append([]string{}, wrap...), shell, "-c", script)
	c := exec.Command(argv[0], argv[1:]...)
	c.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		t.Fatalf("%s: %v: %s", shell, err, errb.String())
	}
	return out.Bytes()
}

// shellPath finds a shell; busybox runs as sh through a symlink of that name, so its
// applets (awk, readlink, ip) stand in for the real tools as on a busybox host.
func shellPath(t *testing.T, sh string) string {
	t.Helper()
	path := testenv.NeedCommand(t, sh)
	if sh != "busybox" {
		return path
	}
	link := filepath.Join(t.TempDir(), "sh")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	return link
}

func factsOf(t *testing.T, out []byte) Facts {
	t.Helper()
	d, err := parseDump(out)
	if err != nil {
		t.Fatal(err)
	}
	if !d.complete {
		t.Fatalf("no end marker in:\n%s", out)
	}
	return factsFrom(d)
}

// sameFacts compares two runs a moment apart: only a lease's remaining lifetime may
// have ticked between them.
func sameFacts(t *testing.T, label string, old, new Facts) {
	t.Helper()
	if len(old.FiniteAddrs) == len(new.FiniteAddrs) {
		for i, a := range old.FiniteAddrs {
			b := new.FiniteAddrs[i]
			if a.Iface == b.Iface && a.CIDR == b.CIDR && a.ValidLft-b.ValidLft >= 0 && a.ValidLft-b.ValidLft <= 5 {
				new.FiniteAddrs[i].ValidLft = a.ValidLft
			}
		}
	}
	if !reflect.DeepEqual(old, new) {
		t.Errorf("%s: facts differ\nold: %+v\nnew: %+v", label, old, new)
	}
}

// liveFacts compares the Facts of two script runs on this live machine, running both
// again (up to three times in all) while they differ: tests in other packages add and
// remove interfaces, and an `ip addr` dump racing with that is interrupted.
func liveFacts(t *testing.T, label string, run func() (old, new Facts)) {
	t.Helper()
	var o, n Facts
	for attempt := 1; attempt <= 3; attempt++ {
		o, n = run()
		if reflect.DeepEqual(o.Warnings, n.Warnings) && len(o.FiniteAddrs) == len(n.FiniteAddrs) {
			break
		}
		t.Logf("%s: attempt %d: the runs saw different addresses; running both again", label, attempt)
	}
	sameFacts(t, label, o, n)
}

// TestFactsScriptMatchesV1 runs the frozen old script and the new one on this machine,
// under each shell, and requires identical Facts; a second new run without awk checks
// the shell-only fallback the same way.
func TestFactsScriptMatchesV1(t *testing.T) {
	for _, sh := range []string{"sh", "dash", "bash", "busybox"} {
		t.Run(sh, func(t *testing.T) {
			shell := shellPath(t, sh)
			var old Facts
			liveFacts(t, "new script", func() (Facts, Facts) {
				old = factsOf(t, runScript(t, shell, scriptV1(t, "0ld0ld")))
				return old, factsOf(t, runScript(t, shell, scriptFor("n3wn3w")))
			})
			noAwk := strings.Replace(scriptFor("n0awk0"), "if has awk; then", "if false; then", 1)
			if noAwk == scriptFor("n0awk0") {
				t.Fatal("awk switch not found in the script")
			}
			liveFacts(t, "new script without awk", func() (Facts, Facts) {
				return factsOf(t, runScript(t, shell, scriptV1(t, "0ld0ld"))), factsOf(t, runScript(t, shell, noAwk))
			})
			t.Logf("facts: %+v", old)
		})
	}
}

// TestFactsScriptMatchesV1InNamespaces repeats the comparison where PID 1 is a shell the
// script may read (/proc/1/exe and environ readable, container=… set), as in a container.
func TestFactsScriptMatchesV1InNamespaces(t *testing.T) {
	testenv.NeedRoot(t)
	unshare := testenv.NeedCommand(t, "unshare")
	env := testenv.NeedCommand(t, "env")
	// PID 1 in the new namespace is env → sh; container= lands in its environment.
	wrap := []string{unshare, "-n", "-p", "-f", "--mount-proc", env, "container=lxc"}
	for _, sh := range []string{"dash", "bash", "busybox"} {
		t.Run(sh, func(t *testing.T) {
			shell := shellPath(t, sh)
			old := factsOf(t, runScript(t, shell, scriptV1(t, "0ld0ld"), wrap...))
			out := runScript(t, shell, scriptFor("n3wn3w"), wrap...)
			d, _ := parseDump(out)
			if e, x := d.section("environ-container"), d.section("pid1-exe"); e != "container=lxc" || !strings.HasSuffix(x, "/"+sh) && x != "" {
				t.Errorf("PID 1's environ %q and exe %q not read", e, x)
			}
			sameFacts(t, "namespaces", old, factsOf(t, out))
			t.Logf("environ-container %q", d.section("environ-container"))
		})
	}
}

// TestFactsScriptExecs counts the processes the script execs on this machine, with
// strace following every fork. Root without systemd (the fleet lab's case, and this
// build box's) needs readlink, ip and awk, plus one exec per optional tool present:
// systemd-detect-virt, iptables (-V), readlink -f where /sbin/init is a symlink, and
// systemctl on systemd hosts.
func TestFactsScriptExecs(t *testing.T) {
	strace := testenv.NeedCommand(t, "strace")
	sh := testenv.NeedCommand(t, "dash")
	count := func(script string) (int, []string) {
		trace := filepath.Join(t.TempDir(), "trace")
		runScript(t, sh, script, strace, "-f", "-qq", "-e", "trace=execve", "-e", "signal=none", "-o", trace)
		execs := execsIn(t, trace)
		return len(execs) - 1, execs // the shell itself is not the script's doing
	}
	oldN, _ := count(scriptV1(t, "0ld0ld"))
	n, execs := count(scriptFor("n3wn3w"))
	t.Logf("execs beyond sh: old script %d, new script %d: %s", oldN, n, strings.Join(execs[1:], "; "))
	bound := 3 // readlink (/proc/1/exe), ip, awk
	for _, c := range []string{"systemd-detect-virt", "iptables"} {
		if _, err := exec.LookPath(c); err == nil {
			bound++
		}
	}
	if fi, err := os.Lstat("/sbin/init"); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		bound++
	}
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		bound++
	}
	if os.Geteuid() != 0 {
		bound += 4 // timeout probe (timeout, true), timeout, sudo
	}
	if n > bound {
		t.Errorf("new script execs %d processes beyond sh, want at most %d", n, bound)
	}
}

// execsIn lists the programs a strace -f -e trace=execve log shows started. With -f a
// call may print as "PID execve(...) <unfinished ...>" and later "PID <... execve
// resumed>)       = 0" (padded); a failed PATH probe ends "= -1 ENOENT".
func execsIn(t *testing.T, trace string) []string {
	t.Helper()
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	var execs []string
	called := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		if strings.HasPrefix(f[1], "execve(") {
			called[f[0]] = strings.TrimSuffix(strings.TrimPrefix(f[1], "execve("), ",")
		}
		if strings.Contains(l, "execve") && len(f) > 3 && f[len(f)-2] == "=" && f[len(f)-1] == "0" {
			execs = append(execs, called[f[0]])
		}
	}
	return execs
}

// BenchmarkFactsScript is one host's share of the facts round trip: the script's run
// on this machine through dash, output discarded; cpu-ns/op is the CPU its processes used.
func BenchmarkFactsScript(b *testing.B) {
	sh, err := exec.LookPath("dash")
	if err != nil {
		sh = "/bin/sh"
	}
	script := scriptFor("b3nchb")
	if v := os.Getenv("HF_FACTS_SCRIPT"); v != "" { // compare another version, e.g. testdata/facts/script-v1.sh
		s, err := os.ReadFile(v)
		if err != nil {
			b.Fatal(err)
		}
		script = strings.Replace(string(s), "NONCE", "b3nchb", 1)
	}
	var cpu time.Duration
	for b.Loop() {
		c := exec.Command(sh, "-c", script)
		if out, err := c.Output(); err != nil || !bytes.Contains(out, []byte("@@hf:b3nchb end")) {
			b.Fatalf("%v: %s", err, out)
		}
		// wait4's rusage covers the shell and every process it waited for.
		cpu += c.ProcessState.UserTime() + c.ProcessState.SystemTime()
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// fakeSystemctl answers is-active, is-enabled (the old script's per-unit calls) and
// show (the new script's one call) from one table; "-" is a unit with no unit file,
// for which is-enabled fails and show prints an empty UnitFileState.
const fakeSystemctl = `#!/bin/sh
state() {
  case $1 in
  firewalld.service) echo active enabled ;;
  nftables.service) echo inactive disabled ;;
  systemd-networkd.service) echo active enabled ;;
  networking.service) echo failed masked ;;
  *) echo inactive - ;;
  esac
}
cmd=$1; shift
[ "$1" = -p ] && shift 2
sep=
for u in "$@"; do
  s=$(state "$u"); a=${s% *}; e=${s#* }
  case $cmd in
  is-active) echo "$a" ;;
  is-enabled) [ "$e" = - ] && { echo "Failed to get unit file state for $u" >&2; exit 1; }; echo "$e" ;;
  show) [ "$e" = - ] && e=; printf '%sActiveState=%s\nUnitFileState=%s\n' "$sep" "$a" "$e"; sep='
' ;;
  esac
done
`

// TestFactsScriptMatchesV1UnderSystemd runs both scripts where /run/systemd/system
// exists and systemctl is a fake (bind-mounted in a private mount namespace), so the
// one `systemctl show` call must give the services the six is-active/is-enabled pairs gave.
func TestFactsScriptMatchesV1UnderSystemd(t *testing.T) {
	testenv.NeedRoot(t)
	unshare := testenv.NeedCommand(t, "unshare")
	real := testenv.NeedCommand(t, "systemctl")
	fake := filepath.Join(t.TempDir(), "systemctl")
	if err := os.WriteFile(fake, []byte(fakeSystemctl), 0o755); err != nil {
		t.Fatal(err)
	}
	setup := "mount -t tmpfs none /run/systemd && mkdir /run/systemd/system && mount --bind " + fake + " " + real + ` && exec "$@"`
	wrap := []string{unshare, "-m", "--propagation", "private", "/bin/sh", "-c", setup, "setup"}
	for _, sh := range []string{"dash", "bash", "busybox"} {
		t.Run(sh, func(t *testing.T) {
			shell := shellPath(t, sh)
			var oldOut, out []byte
			liveFacts(t, "systemd", func() (Facts, Facts) {
				oldOut = runScript(t, shell, scriptV1(t, "0ld0ld"), wrap...)
				out = runScript(t, shell, scriptFor("n3wn3w"), wrap...)
				return factsOf(t, oldOut), factsOf(t, out)
			})
			dOld, _ := parseDump(oldOut)
			d, _ := parseDump(out)
			want := "firewalld active enabled\nufw inactive unknown\nnftables inactive disabled\n" +
				"systemd-networkd active enabled\nNetworkManager inactive unknown\nnetworking failed masked"
			if got := d.section("services"); got != want || dOld.section("services") != want {
				t.Errorf("services:\nnew %q\nold %q\nwant %q", got, dOld.section("services"), want)
			}
		})
	}
}

// TestFactsAwkCapsLikeHead feeds the awk program files that stress the byte cap and
// compares each section with what `head -c CAP` gave the old script, as parsed.
func TestFactsAwkCapsLikeHead(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"empty": "", "nl": "a\nb\n", "nonl": "a\nb", "blank-tail": "a\n\n\n", "long": strings.Repeat("x", 300) + "\ny\n",
		"at-cap": strings.Repeat("z", 99) + "\n", "past-cap": strings.Repeat("w", 100) + "\n", "crlf": "a\r\nb\r\n",
	}
	for _, awk := range []string{"awk", "busybox"} {
		t.Run(awk, func(t *testing.T) {
			argv := []string{testenv.NeedCommand(t, awk)}
			if awk == "busybox" {
				argv = append(argv, "awk")
			}
			argv = append(argv, "-v", "M=@@hf:t", factsAwk)
			var head strings.Builder
			head.WriteString("@@hf:t begin\n")
			for name, body := range files {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
				argv = append(argv, "file "+p, "100", p)
				h := body
				if len(h) > 100 {
					h = h[:100]
				}
				head.WriteString("\n@@hf:t file " + p + "\n" + h)
			}
			head.WriteString("\n@@hf:t end\n")
			c := exec.Command(argv[0], append(argv[1:], "@procs")...)
			out, _ := c.Output() // exits 3: stdin (ip) is empty
			got, err := parseDump(append([]byte("@@hf:t begin\n"), append(out, "\n@@hf:t end\n"...)...))
			if err != nil {
				t.Fatal(err)
			}
			want, _ := parseDump([]byte(head.String()))
			for name := range files {
				k := "file " + filepath.Join(dir, name)
				if got.sections[k] != want.sections[k] {
					t.Errorf("%s: awk gave %q, head -c gave %q", name, got.sections[k], want.sections[k])
				}
			}
		})
	}
}
