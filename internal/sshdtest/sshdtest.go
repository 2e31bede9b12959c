// Package sshdtest starts real OpenSSH sshd servers on 127.0.0.1 for tests, each with
// its own config, host key and throwaway users, all removed in Cleanup.
package sshdtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/internal/testenv"
)

type SSHD struct {
	Port    int
	Dir     string
	HostPub string // host public key file
	Log     string
}

func Need(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "/usr/sbin/sshd", "ssh-keygen", "ssh", "useradd", "userdel", "chpasswd", "sudo", "ssh-agent", "ssh-add")
}

func Run(t testing.TB, stdin string, name string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	c := exec.Command(name, args...)
	c.Stdin, c.Stdout, c.Stderr = strings.NewReader(stdin), &out, &out
	if err := c.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out.String())
	}
	return out.String()
}

func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startSSHD runs /usr/sbin/sshd -D with a generated host key. extra is appended to
// sshd_config.
func Start(t *testing.T, extra string) *SSHD {
	t.Helper()
	dir, err := os.MkdirTemp("", "hf-sshd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	os.MkdirAll("/run/sshd", 0o755) // privilege separation directory
	Run(t, "", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "host_ed25519"))
	s := &SSHD{Dir: dir, HostPub: filepath.Join(dir, "host_ed25519.pub"), Log: filepath.Join(dir, "sshd.log")}
	for attempt := 0; ; attempt++ {
		s.Port = FreePort(t)
		cfg := fmt.Sprintf(`ListenAddress 127.0.0.1:%d
HostKey %s/host_ed25519
PidFile %s/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys %s/keys/%%u
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
LogLevel DEBUG1
%s
`, s.Port, dir, dir, dir, extra)
		os.MkdirAll(filepath.Join(dir, "keys"), 0o755)
		os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(cfg), 0o644)
		cmd := exec.Command("/usr/sbin/sshd", "-D", "-f", filepath.Join(dir, "sshd_config"), "-E", s.Log)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-exited })
		if s.waitUp(exited) {
			return s
		}
		if attempt == 3 {
			log, _ := os.ReadFile(s.Log)
			t.Fatalf("sshd did not start:\n%s", log)
		}
	}
}

func (s *SSHD) waitUp(exited chan struct{}) bool {
	for i := 0; i < 200; i++ {
		select {
		case <-exited:
			return false // port taken meanwhile, most likely
		default:
		}
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.Port)); err == nil {
			c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// authorize lets key (a public key file) log in as user.
func (s *SSHD) Authorize(t *testing.T, user, pubFile string) {
	t.Helper()
	b, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(filepath.Join(s.Dir, "keys", user), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	f.Write(b)
	f.Close()
}

func (s *SSHD) LogText() string {
	b, _ := os.ReadFile(s.Log)
	return string(b)
}

// knownHostsLine is what ssh-keyscan would record for this server.
func (s *SSHD) KnownHostsLine(t *testing.T) string {
	b, err := os.ReadFile(s.HostPub)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	return fmt.Sprintf("[127.0.0.1]:%d %s %s\n", s.Port, f[0], f[1])
}

// testUser creates a unique throwaway user (password unusable, not locked) and removes
// it, its home and its sudoers file in Cleanup.
func User(t *testing.T, prefix string) string {
	t.Helper()
	name := prefix + "-" + nonce()
	for i := 0; ; i++ { // other tests may hold the passwd lock for a moment
		out, err := exec.Command("useradd", "-m", "-p", "*", "-s", "/bin/sh", name).CombinedOutput()
		if err == nil {
			break
		}
		if i == 20 {
			t.Fatalf("useradd %s: %v %s", name, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() {
		os.Remove("/etc/sudoers.d/" + name)
		for i := 0; i < 20; i++ {
			if exec.Command("userdel", "-r", "-f", name).Run() == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("could not remove user %s", name)
	})
	return name
}

func Sudoers(t *testing.T, user, rule string) {
	t.Helper()
	if err := os.WriteFile("/etc/sudoers.d/"+user, []byte(user+" "+rule+"\n"), 0o440); err != nil {
		t.Fatal(err)
	}
}

// clientKey makes an ed25519 key pair in dir.
func ClientKey(t *testing.T, dir, name, passphrase string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	Run(t, "", "ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", name, "-f", p)
	return p
}

func nonce() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
