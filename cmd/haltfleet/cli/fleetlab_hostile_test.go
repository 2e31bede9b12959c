package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// hostileOnFleet is the hostile input and secrets, on the fault test's fleet:
// a remote host that lies in its facts and errors, inventory text made to break a shell,
// and a run that types a key passphrase and a sudo password.
func hostileOnFleet(t *testing.T, ff *faultFleet, common []string, journal func(string) []string) {
	next := ff.ruleset(t, "hf-hostile-next")

	t.Run("ANSI and control characters in facts", func(t *testing.T) {
		const i = 1
		orig, _ := ff.hostSh(i, "cat /etc/os-release")
		t.Cleanup(func() {
			cmd := exec.Command("nsenter", "-t", strconv.Itoa(ff.Hosts[i].InitPID), "-a", "--", "sh", "-c", "cat > /etc/os-release")
			cmd.Stdin = strings.NewReader(orig)
			cmd.Run()
		})
		// Clears the screen, sets the terminal title, reverses text direction, rings the
		// bell; ID tries a command substitution in case anything sources the file.
		hostile := "PRETTY_NAME=\"\x1b[2J\x1b]0;owned\x07Debian\u202e\x1b[31mred\x00\x08\"\n" +
			"NAME=\"Debian\x1bc\"\nID=debian\nVERSION_ID=\"12\x9b1m\"\nVERSION_CODENAME=\"$(touch /tmp/hf-pwned-osrelease)\"\n"
		cmd := exec.Command("nsenter", "-t", strconv.Itoa(ff.Hosts[i].InitPID), "-a", "--", "sh", "-c", "cat > /etc/os-release")
		cmd.Stdin = strings.NewReader(hostile)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("write os-release: %v %s", err, b)
		}
		inv := ff.fzInventory(t, "ansi", next, 5, []int{i}, nil)
		for _, args := range [][]string{{"facts", "-i", inv}, {"facts", "-i", inv, "--json"}, {"plan", "-i", inv}} {
			code, out := haltfleet(t, append(args, common[:4]...)...)
			if code == exitError {
				t.Errorf("%v: exit %d\n%s", args, code, out)
			}
			if bad := controlBytes(out); bad != "" {
				t.Errorf("%v: output holds %s:\n%q", args, bad, out)
			}
			if args[0] == "facts" && args[len(args)-1] != "--json" && !strings.Contains(out, "Debian") {
				t.Errorf("%v: the distro name is lost entirely:\n%s", args, out)
			}
		}
		notExecuted(t, ff, i, "/tmp/hf-pwned-osrelease")
	})

	t.Run("ANSI and megabytes in a remote error", func(t *testing.T) {
		const i = 0
		// An nft that fails with escape sequences and 1 MiB of noise on stderr.
		fake := "#!/bin/sh\nprintf '\\033[2J\\033]0;owned\\007\\033[31mevil\\n' >&2\nhead -c 1048576 /dev/zero | tr '\\0' x >&2\nexit 1\n"
		if out, err := ff.hostSh(i, "mv /usr/sbin/nft /usr/sbin/nft.real"); err != nil {
			t.Fatalf("install a hostile nft: %v %s", err, out)
		}
		cmd := exec.Command("nsenter", "-t", strconv.Itoa(ff.Hosts[i].InitPID), "-a", "--", "sh", "-c", "cat > /usr/sbin/nft && chmod 755 /usr/sbin/nft")
		cmd.Stdin = strings.NewReader(fake)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("install a hostile nft: %v %s", err, b)
		}
		t.Cleanup(func() { ff.hostSh(i, "mv /usr/sbin/nft.real /usr/sbin/nft") })
		inv := ff.fzInventory(t, "evilnft", next, 5, []int{i}, nil)
		ev := filepath.Join(ff.dir, "evilnft.ndjson")
		for _, args := range [][]string{append([]string{"plan", "-i", inv}, common[:4]...), append(append([]string{"up", "-i", inv, "--events", ev}, journal("evilnft")...), common...)} {
			code, out := haltfleet(t, args...)
			if code != exitError {
				t.Errorf("%s with a failing nft: exit %d, want 1", args[0], code)
			}
			if bad := controlBytes(out); bad != "" {
				t.Errorf("%s: output holds %s: %q", args[0], bad, out[:min(len(out), 2000)])
			}
			if len(out) > 64<<10 {
				t.Errorf("%s: %d bytes of output for one failed host: remote noise is not capped", args[0], len(out))
			}
		}
		if b, _ := os.ReadFile(ev); controlBytes(string(b)) != "" || len(b) > 64<<10 {
			t.Errorf("events file: %d bytes, %s", len(b), controlBytes(string(b)))
		}
	})

	t.Run("shell metacharacters in inventory text", func(t *testing.T) {
		const i = 0
		h := ff.Hosts[i]
		// Each entry is the same real host; --forks 1 keeps them from meeting at its lock.
		entries := []string{
			fmt.Sprintf("    \"%s;touch /tmp/hf-pwned-name\":\n      ansible_host: %s\n", h.Name, h.Addr),
			fmt.Sprintf("    \"%s$(touch /tmp/hf-pwned-subst)`touch /tmp/hf-pwned-tick`\":\n      ansible_host: %s\n", h.Name, h.Addr),
			fmt.Sprintf("    %s-sysctl:\n      ansible_host: %s\n      haltfleet_sysctls: {net.ipv4.ip_forward: \"1; touch /tmp/hf-pwned-sysctl\"}\n", h.Name, h.Addr),
			fmt.Sprintf("    %s-become:\n      ansible_host: %s\n      ansible_become: true\n      ansible_become_user: \"root';touch /tmp/hf-pwned-become;'\"\n", h.Name, h.Addr),
			fmt.Sprintf("    %s-quote:\n      ansible_host: %s\n      some_var: \"'\\\"$(touch /tmp/hf-pwned-var)\\n;touch /tmp/hf-pwned-var2\"\n", h.Name, h.Addr),
			"    addr-subst:\n      ansible_host: \"127.0.0.1;touch /tmp/hf-pwned-addr\"\n",
			"    user-subst:\n      ansible_host: " + h.Addr + "\n      ansible_user: \"root$(touch /tmp/hf-pwned-user)\"\n",
		}
		inv := ff.fzInventory(t, "metachar", next, 5, nil, nil)
		b, _ := os.ReadFile(inv)
		os.WriteFile(inv, append(b, strings.Join(entries, "")...), 0o644)
		code, out := haltfleet(t, append(append([]string{"up", "-i", inv, "--forks", "1", "--max-fail", "100%", "--timeout", "3s"}, journal("metachar")...), common...)...)
		t.Logf("hostile names and vars (exit %d):\n%s", code, out)
		if !strings.Contains(out, h.Name+";touch /tmp/hf-pwned-name") {
			t.Errorf("the hostile host name is not reported as written")
		}
		for _, f := range []string{"name", "subst", "tick", "sysctl", "become", "var", "var2", "addr", "user"} {
			notExecuted(t, ff, i, "/tmp/hf-pwned-"+f)
		}
		// The sysctl value is refused or fails verification; it never reaches a shell.
		if got, _ := ff.hostSh(i, "cat /proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(got) != "0" && strings.TrimSpace(got) != "1" {
			t.Errorf("ip_forward is %q", got)
		}
	})

	t.Run("secrets typed on a terminal never leak", func(t *testing.T) {
		const i = 2
		const passphrase, sudoPw = "pp-Kx9-unique-4711", "sudo-Zq2-unique-0815"
		dir := t.TempDir()
		key := filepath.Join(dir, "id_enc")
		if b, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", key).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v %s", err, b)
		}
		pub, _ := os.ReadFile(key + ".pub")
		setup := fmt.Sprintf("printf '%%s\\n' %s >> /home/hf/.ssh/authorized_keys && echo hf:%s | chpasswd && "+
			"printf 'hf ALL=(ALL) ALL\\n' > /etc/sudoers.d/hf", quoteSh(strings.TrimSpace(string(pub))), sudoPw)
		if out, err := ff.hostSh(i, setup); err != nil {
			t.Fatalf("host setup: %v %s", err, out)
		}
		t.Cleanup(func() { ff.hostSh(i, "printf 'hf ALL=(ALL) NOPASSWD:ALL\\n' > /etc/sudoers.d/hf") })
		inv := ff.fzInventory(t, "secrets", next, 5, []int{i}, map[int]string{i: "      ansible_user: hf\n      ansible_become: true\n" +
			"      ansible_ssh_private_key_file: " + key + "\n"})
		ev, jr := filepath.Join(dir, "events.ndjson"), filepath.Join(dir, "journal.ndjson")
		args := append([]string{"up", "-v", "-K", "-i", inv, "--events", ev, "--journal", jr}, common...)
		out, tty, code, cmdlines := runOnTerminal(t, ff, i, map[string]string{"Passphrase for": passphrase, "BECOME password:": sudoPw}, args...)
		t.Logf("run on a terminal (exit %d):\n%s\nterminal:\n%q", code, out, tty)
		if code != exitOK || ff.live(t, i) != reference(t, next) {
			t.Fatalf("the run with a passphrase and a sudo password did not converge: exit %d", code)
		}
		if !strings.Contains(tty, "Passphrase for "+key) || !strings.Contains(tty, "BECOME password:") {
			t.Errorf("the prompts did not come on the terminal: %q", tty)
		}
		// The local files the run wrote: private, in a private directory.
		for _, f := range []string{ev, jr} {
			if st, err := os.Stat(f); err != nil {
				t.Error(err)
			} else if st.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want 0600", f, st.Mode().Perm())
			}
		}
		places := map[string]string{"stdout+stderr": out, "terminal (echo)": tty, "argv of every process seen": cmdlines,
			"events": readString(ev), "journal": readString(jr)}
		// Every file the host wrote during the run (its overlay's upper dir) and under /run.
		host, _ := exec.Command("grep", "-rlaF", "-e", passphrase, "-e", sudoPw, filepath.Join(ff.Hosts[i].Dir, "upper"),
			filepath.Join("/proc", strconv.Itoa(ff.Hosts[i].InitPID), "root", "run")).CombinedOutput()
		places["files on the host"] = string(host)
		local, _ := exec.Command("grep", "-rlaF", "--exclude=id_enc", "-e", passphrase, "-e", sudoPw, ff.dir, dir).CombinedOutput()
		places["files on the controller"] = string(local)
		for where, text := range places {
			for _, s := range []string{passphrase, sudoPw} {
				if strings.Contains(text, s) {
					t.Errorf("a secret appears in %s:\n%s", where, text)
				}
			}
		}
	})
}

// runOnTerminal runs the built CLI with a new pseudo-terminal as its controlling terminal,
// answering prompts (substring -> reply) as a user would. It returns stdout+stderr, what
// appeared on the terminal, the exit code, and the argv of every process seen on the
// controller and in host i while it ran.
func runOnTerminal(t *testing.T, ff *faultFleet, i int, answers map[string]string, args ...string) (string, string, int, string) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no /dev/ptmx: %v", err)
	}
	defer ptm.Close()
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ff.bin, args...)
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(ff.dir, "state"))
	var out syncBuffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pts.Close()
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()

	var tty syncBuffer
	go func() {
		buf := make([]byte, 4096)
		answered := map[string]bool{}
		var seen bytes.Buffer
		for {
			k, err := ptm.Read(buf)
			if err != nil {
				return
			}
			tty.Write(buf[:k])
			seen.Write(buf[:k])
			for prompt, reply := range answers {
				if !answered[prompt] && strings.Contains(seen.String(), prompt) {
					answered[prompt] = true
					time.Sleep(100 * time.Millisecond) // let term.ReadPassword turn echo off
					ptm.Write([]byte(reply + "\n"))
				}
			}
		}
	}()
	var argv strings.Builder
	sample := func() {
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			if b, err := os.ReadFile(p); err == nil {
				argv.Write(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
				argv.WriteByte('\n')
			}
		}
	}
	for done := false; !done; {
		select {
		case <-exited:
			done = true
		case <-time.After(100 * time.Millisecond):
			sample()
		}
	}
	_ = i // host processes are in the controller's /proc too: the fleet shares the kernel
	return out.String(), tty.String(), cmd.ProcessState.ExitCode(), argv.String()
}

// controlBytes names the first escape or control byte in s other than newline and tab.
func controlBytes(s string) string {
	for _, r := range s {
		if r == '\n' || r == '\t' {
			continue
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u202e' {
			return fmt.Sprintf("control character %U", r)
		}
	}
	return ""
}

// notExecuted fails if a marker file exists on host i or on the controller.
func notExecuted(t *testing.T, ff *faultFleet, i int, path string) {
	t.Helper()
	for _, p := range []string{path, filepath.Join("/proc", strconv.Itoa(ff.Hosts[i].InitPID), "root", path)} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s exists: inventory or host text was run by a shell", p)
			os.Remove(p)
		}
	}
}

func readString(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// quoteSh is POSIX single-quote quoting, for the test's own host setup commands.
func quoteSh(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
