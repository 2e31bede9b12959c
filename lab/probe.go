package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

func probeDir(stateDir, name string) string { return filepath.Join(stateDir, "probes", name) }

// startProbeSSHD runs a real OpenSSH sshd inside the namespace, listening only on its
// control address, with its own config, host key, pid file and log.
func startProbeSSHD(ctx context.Context, l *Lab, p *ProbeHost) error {
	dir := probeDir(l.StateDir, p.Name)
	conf := filepath.Join(dir, "sshd_config")
	text := fmt.Sprintf(`ListenAddress %s
Port 22
HostKey %s
PidFile %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
UseDNS no
Subsystem sftp internal-sftp
`, p.Addr, filepath.Join(dir, "ssh_host_ed25519_key"), filepath.Join(dir, "sshd.pid"), l.KeyFile+".pub")
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return err
	}
	// The privilege separation directory sshd insists on.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return err
	}
	if _, err := run(ctx, "/usr/sbin/sshd", "-t", "-f", conf); err != nil {
		return fmt.Errorf("%s: sshd config: %w", p.Name, err)
	}
	pid, err := spawn(filepath.Join(dir, "sshd.out"),
		"ip", "netns", "exec", p.NS, "/usr/sbin/sshd", "-D", "-f", conf, "-E", filepath.Join(dir, "sshd.log"))
	if err != nil {
		return fmt.Errorf("%s: sshd: %w", p.Name, err)
	}
	p.SSHDPID = pid
	// sshd binds within milliseconds; give it a moment before anyone connects.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := banner(ctx, p.Addr+":22"); err == nil {
			return nil
		} else if time.Now().After(deadline) || !alive(pid, "") {
			b, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
			return fmt.Errorf("%s: sshd not answering: %w: %s", p.Name, err, tail(string(b), 400))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wanListeners are the services the probes aim at. 8080 answers with the peer
// address it sees, so a test can prove the lan host arrived masqueraded.
var wanListeners = map[string][]string{
	"tcp80":   {"TCP-LISTEN:80,bind=" + wanHostIP + ",reuseaddr,fork", "SYSTEM:echo hf-tcp-80"},
	"tcp81":   {"TCP-LISTEN:81,bind=" + wanHostIP + ",reuseaddr,fork", "SYSTEM:echo hf-tcp-81"},
	"udp5353": {"UDP-RECVFROM:5353,bind=" + wanHostIP + ",fork", "SYSTEM:echo hf-udp-5353"},
	"tcp8080": {"TCP-LISTEN:8080,bind=" + wanHostIP + ",reuseaddr,fork", `SYSTEM:echo "$SOCAT_PEERADDR"`},
}

func startListeners(ctx context.Context, l *Lab, p *ProbeHost) error {
	dir := probeDir(l.StateDir, p.Name)
	p.Listeners = map[string]int{}
	for name, addrs := range wanListeners {
		pid, err := spawn(filepath.Join(dir, name+".log"), "ip", "netns", "exec", p.NS, "socat", addrs[0], addrs[1])
		if err != nil {
			return fmt.Errorf("%s: listener %s: %w", p.Name, name, err)
		}
		p.Listeners[name] = pid
		if err := os.WriteFile(filepath.Join(dir, name+".pid"), []byte(fmt.Sprintln(pid)), 0o644); err != nil {
			return err
		}
	}
	time.Sleep(200 * time.Millisecond)
	for name, pid := range p.Listeners {
		if !alive(pid, "") {
			b, _ := os.ReadFile(filepath.Join(dir, name+".log"))
			return fmt.Errorf("%s: listener %s died: %s", p.Name, name, tail(string(b), 400))
		}
	}
	return nil
}
