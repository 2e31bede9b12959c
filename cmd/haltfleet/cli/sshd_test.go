package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haltfleet/haltfleet/internal/sshdtest"
)

// realHost is one real sshd with a user that may log in, and an inventory naming it.
type realHost struct {
	srv        *sshdtest.SSHD
	user, key  string
	knownHosts string
	inventory  string
}

func newRealHost(t *testing.T, sudoRule string) *realHost {
	t.Helper()
	sshdtest.Need(t)
	dir := t.TempDir()
	h := &realHost{srv: sshdtest.Start(t, ""), user: sshdtest.User(t, "hfcli"), knownHosts: filepath.Join(dir, "known_hosts")}
	h.key = sshdtest.ClientKey(t, dir, "id_ed25519", "")
	h.srv.Authorize(t, h.user, h.key+".pub")
	if sudoRule != "" {
		sshdtest.Sudoers(t, h.user, sudoRule)
	}
	os.WriteFile(h.knownHosts, []byte(h.srv.KnownHostsLine(t)), 0o600)
	h.inventory = filepath.Join(dir, "hosts.yml")
	os.WriteFile(h.inventory, []byte(fmt.Sprintf(`all:
  hosts:
    real1:
      ansible_host: 127.0.0.1
      ansible_port: %d
      ansible_user: %s
      ansible_ssh_private_key_file: %s
      ansible_become: true
      ansible_python_interpreter: /usr/bin/python3
      haltfleet_halt: false
      haltfleet_ruleset: rules.nft
`, h.srv.Port, h.user, h.key)), 0o644)
	os.WriteFile(filepath.Join(dir, "rules.nft"), []byte("table inet hfclitest {\n  chain input {\n    type filter hook input priority 0; policy accept;\n  }\n}\n"), 0o644)
	return h
}

func TestFactsOverRealSSHD(t *testing.T) {
	h := newRealHost(t, "ALL=(ALL) NOPASSWD: ALL")
	code, out := haltfleet(t, "facts", "-i", h.inventory, "-F", "none", "--known-hosts", h.knownHosts, "--json")
	if code != 0 {
		t.Fatalf("facts: exit %d\n%s", code, out)
	}
	var rows []struct {
		Host  string
		Facts struct {
			Distro struct{ ID string }
			Arch   string
			Kernel string
			Sudo   string
		}
		Error string
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 {
		t.Fatalf("facts --json: %v\n%s", err, out)
	}
	f := rows[0].Facts
	if rows[0].Host != "real1" || f.Distro.ID != "debian" || f.Arch != "amd64" || f.Kernel == "" || f.Sudo != "nopasswd" {
		t.Errorf("facts over sshd: %+v", rows[0])
	}
	// The table form names the host and ends with a recap.
	code, out = haltfleet(t, "facts", "-i", h.inventory, "-F", "none", "--known-hosts", h.knownHosts)
	if code != 0 || !strings.Contains(out, "== real1") || !strings.Contains(out, "recap: ok=1") {
		t.Errorf("facts table: exit %d\n%s", code, out)
	}
}

// Strict by default: an unknown host key is refused with a hint; --accept-new records it.
func TestKnownHostsStrictThenAcceptNew(t *testing.T) {
	h := newRealHost(t, "")
	empty := filepath.Join(t.TempDir(), "known_hosts")
	code, out := haltfleet(t, "facts", "-i", h.inventory, "-F", "none", "--known-hosts", empty)
	if code != exitError || !strings.Contains(out, "accept-new") || !strings.Contains(out, "unreachable") {
		t.Fatalf("unknown key: exit %d, want 1 with an --accept-new hint\n%s", code, out)
	}
	code, out = haltfleet(t, "facts", "-i", h.inventory, "-F", "none", "--known-hosts", empty, "--accept-new")
	if code != 0 {
		t.Fatalf("--accept-new: exit %d\n%s", code, out)
	}
	kh, _ := os.ReadFile(empty)
	if !strings.Contains(string(kh), strings.Fields(h.srv.KnownHostsLine(t))[2]) {
		t.Errorf("--accept-new did not record the key: %q", kh)
	}
	// Now a different host key on the same address is a mismatch, even with --accept-new.
	os.WriteFile(empty, []byte(fmt.Sprintf("[127.0.0.1]:%d ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMz3cKb8k0Bv0m1wGf0c7FJm2p0lQh8wH6bq4Yc1t7dX\n", h.srv.Port)), 0o600)
	code, out = haltfleet(t, "facts", "-i", h.inventory, "-F", "none", "--known-hosts", empty, "--accept-new")
	if code != exitError || !strings.Contains(out, "mismatch") {
		t.Errorf("changed key with --accept-new: exit %d, want 1 and a mismatch\n%s", code, out)
	}
}

// A sudo password given by file reaches sudo and appears in no output, even with -v.
func TestBecomePasswordNeverPrinted(t *testing.T) {
	h := newRealHost(t, "ALL=(ALL) ALL")
	const secret = "s3cret-Pa55-hf"
	sshdtest.Run(t, h.user+":"+secret+"\n", "chpasswd")
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte(secret+"\n"), 0o600)
	events := filepath.Join(t.TempDir(), "events.ndjson")
	// plan runs sudo for real (nft -c and reading the live ruleset need root); it only reads.
	code, out := haltfleet(t, "plan", "-v", "-i", h.inventory, "-F", "none", "--known-hosts", h.knownHosts,
		"--become-password-file", pwFile, "--events", events)
	if strings.Contains(out, secret) {
		t.Fatalf("the become password appears in the output:\n%s", out)
	}
	if ev, _ := os.ReadFile(events); strings.Contains(string(ev), secret) {
		t.Fatalf("the become password appears in the events file")
	}
	if code != exitDiff || strings.Contains(out, "sudo needs a password") || strings.Contains(out, "sudo failed") {
		t.Errorf("sudo with the password file failed (exit %d):\n%s", code, out)
	}
	// A wrong password is an error that names sudo, without the password.
	os.WriteFile(pwFile, []byte("wrong-"+secret+"\n"), 0o600)
	code, out = haltfleet(t, "plan", "-i", h.inventory, "-F", "none", "--known-hosts", h.knownHosts, "--become-password-file", pwFile)
	if code != exitError || !strings.Contains(out, "sudo") || strings.Contains(out, secret) {
		t.Errorf("wrong password: exit %d\n%s", code, out)
	}
}
