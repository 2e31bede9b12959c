package bench

import (
	"bufio"
	"context"
	"embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/haltfleet/haltfleet/fleetlab"
)

//go:embed ansible/*.yml
var playbooks embed.FS

// ansibleCfg is tuned as Ansible's users tune it for speed: forks equal to haltfleet's,
// pipelining, ControlPersist (Ansible's default ssh_args plus -F none and BatchMode).
// ssh and sftp are small wrappers that log each invocation: one SSH session each.
const ansibleCfg = `[defaults]
forks = %d
host_key_checking = True
interpreter_python = /usr/bin/python3
retry_files_enabled = False
deprecation_warnings = False
local_tmp = %[2]s/tmp
timeout = 10

[ssh_connection]
pipelining = True
ssh_args = -F none -C -o ControlMaster=auto -o ControlPersist=60s -o BatchMode=yes
control_path_dir = %[2]s/cp
ssh_executable = %[2]s/bin/ssh
sftp_executable = %[2]s/bin/sftp
`

// wrapper logs its argv (one line per SSH session) and becomes the real program.
const wrapper = `#!/bin/sh
printf '%%s\n' "$*" >> %s
exec %s "$@"
`

// ansibleDir writes the config, the playbooks and the wrappers for e's fleet.
func ansibleDir(e *runEnv) (string, error) {
	dir := filepath.Join(e.dir, "ansible")
	for _, d := range []string{"bin", "cp", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "ansible.cfg"), []byte(fmt.Sprintf(ansibleCfg, e.cfg.Forks, dir)), 0o644); err != nil {
		return "", err
	}
	ents, err := playbooks.ReadDir("ansible")
	if err != nil {
		return "", err
	}
	for _, ent := range ents {
		b, err := playbooks.ReadFile("ansible/" + ent.Name())
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, ent.Name()), b, 0o644); err != nil {
			return "", err
		}
	}
	for _, prog := range []string{"ssh", "sftp"} {
		real, err := exec.LookPath(prog)
		if err != nil {
			return "", err
		}
		w := fmt.Sprintf(wrapper, shq(filepath.Join(dir, "sessions.log")), shq(real))
		if err := os.WriteFile(filepath.Join(dir, "bin", prog), []byte(w), 0o755); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// ansible runs playbook with ansible-playbook on the fleet, starting without SSH masters
// and closing them after, so each row pays for its own connections.
func ansible(name, playbook string) func(ctx context.Context, e *runEnv) (Result, error) {
	return func(ctx context.Context, e *runEnv) (Result, error) {
		var res Result
		dir, err := ansibleDir(e)
		if err != nil {
			return res, err
		}
		sessLog := filepath.Join(dir, "sessions.log")
		if err := os.Remove(sessLog); err != nil && !errors.Is(err, os.ErrNotExist) {
			return res, err
		}
		closeMasters(dir)
		defer closeMasters(dir)
		base := filepath.Join(e.dir, name)
		out, err := os.Create(base + ".out")
		if err != nil {
			return res, err
		}
		defer out.Close()
		cmd := exec.CommandContext(ctx, "ansible-playbook", "-i", e.fleet.Inventory, filepath.Join(dir, playbook))
		cmd.Dir, cmd.Stdout, cmd.Stderr = dir, out, out
		cmd.Env = append(os.Environ(), "ANSIBLE_CONFIG="+filepath.Join(dir, "ansible.cfg"), "ANSIBLE_NOCOLOR=1")
		// Its own process group, so an interrupt reaches every worker and ssh.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
		cmd.WaitDelay = 20 * time.Second
		start := time.Now()
		err = cmd.Run()
		res.Wall = time.Since(start)
		if cmd.ProcessState != nil {
			res.ExitCode = cmd.ProcessState.ExitCode()
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				res.CPU = rusageCPU(ru) // with every worker and ssh it reaped
			}
		}
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // stragglers of the group
		}
		res.Note = ansibleRecap(base + ".out")
		if err != nil {
			return res, fmt.Errorf("ansible-playbook %s: %w (see %s.out)", playbook, err, base)
		}
		sess, err := ansibleSessions(sessLog, e.fleet.Hosts)
		if err != nil {
			return res, err
		}
		res.HasSessions = true
		res.Sessions, res.SessionsMax = perHost(e.fleet.Hosts, func(h fleetlab.Host) int { return sess[h.Addr] })
		return res, ctx.Err()
	}
}

var addrRE = regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)

// ansibleSessions counts the wrapper's lines per fleet address.
func ansibleSessions(path string, hosts []fleetlab.Host) (map[string]int, error) {
	ours := map[string]bool{}
	for _, h := range hosts {
		ours[h.Addr] = true
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ansible sessions: %w", err)
	}
	defer f.Close()
	m := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		for _, a := range addrRE.FindAllString(sc.Text(), -1) {
			if ours[a] {
				m[a]++
				break
			}
		}
	}
	return m, sc.Err()
}

// closeMasters ends every ControlPersist master left in dir/cp.
func closeMasters(dir string) {
	ents, _ := os.ReadDir(filepath.Join(dir, "cp"))
	for _, ent := range ents {
		sock := filepath.Join(dir, "cp", ent.Name())
		_ = exec.Command("ssh", "-F", "none", "-o", "ControlPath="+sock, "-O", "exit", "fleet").Run()
		_ = os.Remove(sock)
	}
}

// resetHosts puts every host back to its boot state for the job: the image's
// /etc/nftables.conf loaded, no haltfleet sysctl file, ip_forward off, no /run/haltfleet.
// It works from the controller through each host's namespaces, not over SSH.
func resetHosts(ctx context.Context, e *runEnv) error {
	orig, err := os.ReadFile(filepath.Join(e.fleet.Lower, "etc", "nftables.conf"))
	if err != nil {
		return err
	}
	const script = `cat > /etc/nftables.conf && chmod 755 /etc/nftables.conf && nft -f /etc/nftables.conf &&
rm -f /etc/sysctl.d/99-haltfleet.conf && sysctl -q -w net.ipv4.ip_forward=0 && rm -rf /run/haltfleet`
	return eachHost(ctx, e.fleet.Hosts, 8, func(ctx context.Context, h fleetlab.Host) error {
		cmd := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(h.InitPID), "-m", "-n", "-p", "--", "sh", "-c", script)
		cmd.Stdin = strings.NewReader(string(orig))
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: reset: %w: %s", h.Name, err, out)
		}
		return nil
	})
}

func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

var recapRE = regexp.MustCompile(`^\S+\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)`)

// ansibleRecap sums PLAY RECAP in haltfleet's words: hosts changed, failed, unreachable.
func ansibleRecap(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var ok, changed, unreachable, failed int
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		g := recapRE.FindStringSubmatch(sc.Text())
		if g == nil {
			continue
		}
		c, _ := strconv.Atoi(g[2])
		u, _ := strconv.Atoi(g[3])
		fl, _ := strconv.Atoi(g[4])
		switch {
		case u > 0:
			unreachable++
		case fl > 0:
			failed++
		case c > 0:
			changed++
		default:
			ok++
		}
	}
	return fmt.Sprintf("recap: ok=%d changed=%d failed=%d unreachable=%d", ok, changed, failed, unreachable)
}
