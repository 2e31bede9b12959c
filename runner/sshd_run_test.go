package runner

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestRealSSHDExecAndFacts(t *testing.T) {
	f := newRealFixture(t)
	s := f.get(t, Options{})
	ctx := context.Background()
	res, err := s.Exec(ctx, Cmd{Command: "id -un; . /etc/os-release && echo $ID; uname -s; cat /proc/1/comm >/dev/null && echo ok"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(res.Stdout)); len(got) != 4 || got[0] != f.user || got[2] != "Linux" || got[3] != "ok" {
		t.Fatalf("facts: %q", res.Stdout)
	}
	res, err = s.Exec(ctx, Cmd{Command: "wc -c", Stdin: strings.NewReader(strings.Repeat("x", 100000))})
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "100000" {
		t.Fatalf("stdin: %q %v", res.Stdout, err)
	}
	_, err = s.Exec(ctx, Cmd{Command: "echo 'nft: syntax error' >&2; exit 1"})
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 1 || ce.Stderr != "nft: syntax error" {
		t.Fatalf("want CommandError, got %v", err)
	}
	if n := strings.Count(f.srv.LogText(), "Accepted publickey"); n != 1 {
		t.Fatalf("want one connection for three commands, sshd accepted %d", n)
	}
}

func TestRealSSHDSFTPAndSudoNoPassword(t *testing.T) {
	f := newRealFixture(t)
	sudoers(t, f.user, "ALL=(ALL) NOPASSWD: ALL")
	s := f.get(t, Options{BecomePassword: func() ([]byte, error) { t.Error("password asked for NOPASSWD sudo"); return nil, nil }})
	ctx := context.Background()
	home := "/home/" + f.user
	if err := s.Upload(ctx, home+"/plain.txt", strings.NewReader("hello\n"), 0o640, false); err != nil {
		t.Fatal(err)
	}
	assertFile(t, home+"/plain.txt", "hello\n", 0o640, f.user)
	b, err := s.Download(ctx, home+"/plain.txt", false)
	if err != nil || string(b) != "hello\n" {
		t.Fatalf("download: %q %v", b, err)
	}
	res, err := s.Exec(ctx, Cmd{Command: "id -u", Sudo: true})
	if err != nil || string(res.Stdout) != "0\n" {
		t.Fatalf("sudo id: %q %v", res.Stdout, err)
	}
	res, err = s.Exec(ctx, Cmd{Command: "cat", Stdin: strings.NewReader("payload"), Sudo: true})
	if err != nil || string(res.Stdout) != "payload" || len(res.Stderr) != 0 {
		t.Fatalf("sudo stdin: %q %q %v", res.Stdout, res.Stderr, err)
	}
	dir, _ := os.MkdirTemp("", "hf-root-")
	defer os.RemoveAll(dir)
	target := filepath.Join(dir, "ruleset.nft")
	if err := s.Upload(ctx, target, strings.NewReader("table inet x {}\n"), 0o600, true); err != nil {
		t.Fatal(err)
	}
	assertFile(t, target, "table inet x {}\n", 0o600, "root")
	if b, err := s.Download(ctx, target, true); err != nil || string(b) != "table inet x {}\n" {
		t.Fatalf("sudo download: %q %v", b, err)
	}
	if err := s.Upload(ctx, target, strings.NewReader("x"), 0o600, false); err == nil {
		t.Fatal("upload into a root-only directory without sudo succeeded")
	}
	if n := strings.Count(f.srv.LogText(), "Accepted publickey"); n != 1 {
		t.Fatalf("SFTP and commands should share one connection, sshd accepted %d", n)
	}
}

func assertFile(t *testing.T, path, content string, mode os.FileMode, owner string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || string(b) != content {
		t.Fatalf("%s: %q %v", path, b, err)
	}
	st, _ := os.Stat(path)
	out, _ := exec.Command("stat", "-c", "%U", path).Output()
	if st.Mode().Perm() != mode || strings.TrimSpace(string(out)) != owner {
		t.Fatalf("%s: mode %v owner %s, want %v %s", path, st.Mode().Perm(), out, mode, owner)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*haltfleet*"))
	if len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
}

func TestRealSSHDSudoPassword(t *testing.T) {
	f := newRealFixture(t)
	const password = "s3cret-Pass'word"
	run(t, f.user+":"+password+"\n", "chpasswd")
	sudoers(t, f.user, "ALL=(ALL) ALL")
	var asked atomic.Int32
	s := f.get(t, Options{BecomePassword: func() ([]byte, error) { asked.Add(1); return []byte(password), nil }})
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		res, err := s.Exec(ctx, Cmd{Command: "id -u; cat", Stdin: strings.NewReader("after the password"), Sudo: true})
		if err != nil || string(res.Stdout) != "0\nafter the password" {
			t.Fatalf("sudo with password: %q %q %v", res.Stdout, res.Stderr, err)
		}
		if strings.Contains(string(res.Stderr), "sudo") {
			t.Fatalf("prompt leaked into stderr: %q", res.Stderr)
		}
	}
	if asked.Load() != 1 {
		t.Fatalf("password asked %d times", asked.Load())
	}

	wrong := f.get(t, Options{BecomePassword: func() ([]byte, error) { return []byte("wrong-" + password), nil }})
	_, err := wrong.Exec(ctx, Cmd{Command: "id -u", Sudo: true})
	if !errors.Is(err, ErrSudoFailed) || strings.Contains(err.Error(), password) {
		t.Fatalf("want ErrSudoFailed without the password in it, got %v", err)
	}
	none := f.get(t, Options{})
	_, err = none.Exec(ctx, Cmd{Command: "id -u", Sudo: true})
	if !errors.Is(err, ErrSudoPassword) {
		t.Fatalf("want ErrSudoPassword, got %v", err)
	}
	if strings.Contains(f.srv.LogText(), password) {
		t.Fatal("password in the sshd log (so it was in argv)")
	}
}

func TestRealSSHDNotInSudoers(t *testing.T) {
	f := newRealFixture(t)
	s := f.get(t, Options{BecomePassword: func() ([]byte, error) { return []byte("x"), nil }})
	_, err := s.Exec(context.Background(), Cmd{Command: "true", Sudo: true})
	if !errors.Is(err, ErrSudoFailed) && !errors.Is(err, ErrSudoPassword) {
		t.Fatalf("want a sudo error, got %v", err)
	}
}

func TestRealSSHDProxyJumpTwoHops(t *testing.T) {
	f := newRealFixture(t)
	j1, j2 := startSSHD(t, ""), startSSHD(t, "")
	for _, j := range []*sshd{j1, j2} {
		j.Authorize(t, f.user, f.key+".pub")
		kh, _ := os.ReadFile(f.knownHosts)
		os.WriteFile(f.knownHosts, append(kh, j.KnownHostsLine(t)...), 0o600)
	}
	hop := func(j *sshd) string { return f.user + "@127.0.0.1:" + strconv.Itoa(j.Port) }
	first := "127.0.0.1:" + strconv.Itoa(j1.Port)
	// Jump hosts do not inherit the target's key (as with ssh -J): ssh_config gives it.
	cfg, err := ParseSSHConfig([]byte("Host 127.0.0.1\n  IdentityFile "+f.key+"\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := f.pool(t, Options{SSHConfig: cfg, Dial: func(ctx context.Context, n, addr string) (net.Conn, error) {
		if addr != first { // only the first hop may be dialled directly
			return nil, errors.New("direct dial to " + addr + " refused by test")
		}
		var d net.Dialer
		return d.DialContext(ctx, n, addr)
	}})
	tg := f.target
	tg.ProxyJump = hop(j1) + "," + hop(j2)
	tg.IdentityFiles = nil
	ctx := context.Background()
	s, err := p.Get(ctx, tg)
	if err != nil {
		t.Fatalf("%v\nj1:\n%s", err, j1.LogText())
	}
	if res, err := s.Exec(ctx, Cmd{Command: "echo via jumps"}); err != nil || string(res.Stdout) != "via jumps\n" {
		t.Fatalf("%q %v", res.Stdout, err)
	}
	tg2 := tg
	tg2.Name = "second-inventory-name"
	if _, err := p.Get(ctx, tg2); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(j2.LogText(), "to 127.0.0.1 port "+strconv.Itoa(f.srv.Port)) {
		t.Fatalf("second hop did not forward to the target:\n%s", j2.LogText())
	}
	for _, j := range []*sshd{j1, j2, f.srv} {
		if n := strings.Count(j.LogText(), "Accepted publickey"); n != 1 {
			t.Fatalf("sshd on %d accepted %d connections, want 1 (shared)", j.Port, n)
		}
	}
}

func TestRealSSHDKnownHosts(t *testing.T) {
	f := newRealFixture(t)
	os.Remove(f.knownHosts)
	ctx := context.Background()
	_, err := f.pool(t, Options{}).Get(ctx, f.target)
	if !errors.Is(err, ErrHostKeyUnknown) {
		t.Fatalf("want ErrHostKeyUnknown, got %v", err)
	}
	if _, err := f.pool(t, Options{AcceptNew: true}).Get(ctx, f.target); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool(t, Options{}).Get(ctx, f.target); err != nil {
		t.Fatalf("strict after accept-new: %v", err)
	}
	// OpenSSH itself accepts the (hashed) line we wrote.
	out, err := exec.Command("ssh", "-F", "none", "-i", f.key, "-o", "UserKnownHostsFile="+f.knownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", strconv.Itoa(f.srv.Port), f.user+"@127.0.0.1", "echo", "openssh-ok").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "openssh-ok") {
		t.Fatalf("ssh with our known_hosts: %v %s", err, out)
	}
	// The host is "reinstalled": a new real host key, refused even with accept-new.
	other := startSSHD(t, "")
	line := strings.Replace(other.KnownHostsLine(t), strconv.Itoa(other.Port), strconv.Itoa(f.srv.Port), 1)
	os.WriteFile(f.knownHosts, []byte(line), 0o600)
	_, err = f.pool(t, Options{AcceptNew: true}).Get(ctx, f.target)
	if !errors.Is(err, ErrHostKeyMismatch) || !strings.Contains(err.Error(), "SHA256:") {
		t.Fatalf("want ErrHostKeyMismatch with fingerprints, got %v", err)
	}
	if b, _ := os.ReadFile(f.knownHosts); string(b) != line {
		t.Fatal("known_hosts changed")
	}
}

func TestRealSSHDConfigAlias(t *testing.T) {
	f := newRealFixture(t)
	cfgFile := filepath.Join(t.TempDir(), "config")
	os.WriteFile(cfgFile, []byte("Host fw-alias\n  HostName 127.0.0.1\n  Port "+strconv.Itoa(f.srv.Port)+"\n  User "+f.user+
		"\n  IdentityFile "+f.key+"\n  IdentitiesOnly yes\n  UserKnownHostsFile "+f.knownHosts+"\n"), 0o600)
	cfg, err := LoadSSHConfig(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	p := f.pool(t, Options{SSHConfig: cfg, KnownHostsFiles: []string{"/nonexistent"}})
	s, err := p.Get(context.Background(), Target{Name: "fw-alias"})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.Exec(context.Background(), Cmd{Command: "id -un"}); err != nil || strings.TrimSpace(string(res.Stdout)) != f.user {
		t.Fatalf("%q %v", res.Stdout, err)
	}
}

func TestRealSSHDAgent(t *testing.T) {
	f := newRealFixture(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	c := exec.Command("ssh-add", f.key)
	c.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v %s", err, out)
	}
	os.Remove(f.key) // only the agent holds the key now
	f.target.IdentityFiles = []string{f.key}
	s := f.get(t, Options{Agent: sock})
	if _, err := s.Exec(context.Background(), Cmd{Command: "true"}); err != nil {
		t.Fatal(err)
	}
}

func TestRealSSHDCertificate(t *testing.T) {
	needSSHD(t)
	dir := t.TempDir()
	ca := clientKey(t, dir, "ca", "")
	srv := startSSHD(t, "TrustedUserCAKeys "+ca+".pub")
	user := testUser(t, "hfcert")
	key := clientKey(t, dir, "id_ed25519", "")
	run(t, "", "ssh-keygen", "-q", "-s", ca, "-I", "haltfleet-test", "-n", user, key+".pub") // writes id_ed25519-cert.pub
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(srv.KnownHostsLine(t)), 0o600)
	p := NewPool(Options{KnownHostsFiles: []string{kh}, GlobalKnownHostsFiles: []string{}, Agent: "none"})
	defer p.Close()
	_, err := p.Get(context.Background(), Target{Name: "cert", Host: "127.0.0.1", Port: srv.Port, User: user, IdentityFiles: []string{key}})
	if err != nil {
		t.Fatalf("%v\n%s", err, srv.LogText())
	}
	if !strings.Contains(srv.LogText(), "ED25519-CERT") {
		t.Fatalf("not authenticated by certificate:\n%s", srv.LogText())
	}
}

func TestRealSSHDDisconnectAndCancel(t *testing.T) {
	f := newRealFixture(t)
	s := f.get(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Exec(ctx, Cmd{Command: "sleep 30"})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("cancel: %v after %s", err, time.Since(start))
	}
	if _, err := s.Exec(context.Background(), Cmd{Command: "true"}); err != nil {
		t.Fatalf("connection unusable after cancel: %v", err)
	}
	// Kill this connection's sshd process, as a halting host would drop it.
	out, _ := exec.Command("pgrep", "-f", "sshd: "+f.user).Output()
	for _, pid := range strings.Fields(string(out)) {
		n, _ := strconv.Atoi(pid)
		syscall.Kill(n, syscall.SIGKILL)
	}
	_, err = s.Exec(context.Background(), Cmd{Command: "sleep 5"})
	if !errors.Is(err, ErrDisconnected) {
		t.Fatalf("want ErrDisconnected, got %v", err)
	}
}
