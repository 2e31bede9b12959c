package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func vmDir(stateDir, fw string) string { return filepath.Join(stateDir, "vms", fw) }

// prepareDisk copies the variant image and injects what makes this VM itself: name,
// machine-id, host key, authorized keys, network config. ip_forward stays off:
// enabling it is haltfleet's job.
func prepareDisk(ctx context.Context, img Image, vm *VM, hostKey, authorized string) error {
	if _, err := run(ctx, "cp", "--sparse=always", "--reflink=auto", img.Rootfs, vm.Disk); err != nil {
		return fmt.Errorf("%s: disk copy: %w", vm.Name, err)
	}
	mnt := filepath.Join(filepath.Dir(vm.Disk), "mnt")
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		return err
	}
	defer os.Remove(mnt)
	if _, err := run(ctx, "mount", "-o", "loop,nosuid,nodev", vm.Disk, mnt); err != nil {
		return fmt.Errorf("%s: disk mount: %w", vm.Name, err)
	}
	injectErr := inject(mnt, vm, hostKey, authorized)
	// umount with a fresh context: never leave a loop mount behind.
	_, umountErr := run(context.Background(), "umount", mnt)
	if injectErr != nil {
		return fmt.Errorf("%s: disk inject: %w", vm.Name, injectErr)
	}
	if umountErr != nil {
		return fmt.Errorf("%s: disk umount: %w", vm.Name, umountErr)
	}
	return nil
}

type guestFile struct {
	data     string
	mode     os.FileMode
	uid, gid int
}

func inject(root string, vm *VM, hostKey, authorized string) error {
	keyPriv, err := os.ReadFile(hostKey)
	if err != nil {
		return err
	}
	keyPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		return err
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	files := map[string]guestFile{
		"/etc/hostname":                     {data: vm.Name + "\n", mode: 0o644},
		"/etc/hosts":                        {data: "127.0.0.1 localhost\n127.0.1.1 " + vm.Name + "\n", mode: 0o644},
		"/etc/machine-id":                   {data: hex.EncodeToString(id) + "\n", mode: 0o444},
		"/etc/ssh/ssh_host_ed25519_key":     {data: string(keyPriv), mode: 0o600},
		"/etc/ssh/ssh_host_ed25519_key.pub": {data: string(keyPub), mode: 0o644},
		"/root/.ssh/authorized_keys":        {data: authorized + "\n", mode: 0o600},
		"/home/hf/.ssh/authorized_keys":     {data: authorized + "\n", mode: 0o600, uid: 1000, gid: 1000},
		"/etc/network/interfaces":           {data: interfacesFile(), mode: 0o644},
	}
	if vm.Variant == Networkd {
		delete(files, "/etc/network/interfaces")
		for p, d := range networkdFiles() {
			files[p] = guestFile{data: d, mode: 0o644}
		}
	}
	for p, f := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(f.data), f.mode); err != nil {
			return err
		}
		if err := os.Chmod(full, f.mode); err != nil {
			return err
		}
		if err := os.Chown(full, f.uid, f.gid); err != nil {
			return err
		}
	}
	return nil
}

func mac(slot, nic int) string { return fmt.Sprintf("52:54:00:68:%02x:%02x", slot, nic) }

// startVM boots the VM's disk under TCG (never KVM: these hosts' /dev/kvm runs only
// paravirtualised guests) and plugs its taps into the namespaces.
func startVM(ctx context.Context, vm *VM, w wiring) error {
	if err := w.newTaps(ctx); err != nil {
		return fmt.Errorf("%s: boot: %w", vm.Name, err)
	}
	dir := filepath.Dir(vm.Disk)
	pidFile := filepath.Join(dir, "qemu.pid")
	_ = os.Remove(pidFile)
	argv := []string{"qemu-system-x86_64", "-name", vm.Name,
		"-accel", "tcg", "-m", fmt.Sprint(vm.MemoryMiB), "-smp", "1",
		"-nodefaults", "-display", "none",
		"-kernel", vm.Kernel, "-initrd", vm.Initrd,
		"-append", "console=ttyS0 root=/dev/vda rw net.ifnames=0 panic=0",
		"-drive", "file=" + vm.Disk + ",if=virtio,format=raw",
		"-chardev", "file,id=con,path=" + vm.Console + ",append=on", "-serial", "chardev:con",
		"-netdev", "tap,id=lan,ifname=" + w.lanTap + ",script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=lan,mac=" + mac(vm.Slot, 1) + ",addr=0x3",
		"-netdev", "tap,id=wan,ifname=" + w.wanTap + ",script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=wan,mac=" + mac(vm.Slot, 2) + ",addr=0x4",
		"-netdev", fmt.Sprintf("user,id=mgmt,net=10.0.2.0/24,ipv6=off,restrict=on,hostfwd=tcp:127.0.0.1:%d-%s:22", vm.SSHPort, mgmtFwIP),
		"-device", "virtio-net-pci,netdev=mgmt,mac=" + mac(vm.Slot, 3) + ",addr=0x5",
		"-device", "virtio-rng-pci",
		"-monitor", "unix:" + filepath.Join(dir, "monitor.sock") + ",server=on,wait=off",
		"-pidfile", pidFile, "-daemonize",
	}
	logf, err := os.OpenFile(filepath.Join(dir, "qemu.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "qemu.log"))
		return fmt.Errorf("%s: qemu: %w: %s", vm.Name, err, tail(string(b), 600))
	}
	pid, err := readPID(pidFile)
	if err != nil {
		return fmt.Errorf("%s: qemu pid: %w", vm.Name, err)
	}
	vm.PID = pid
	if err := w.plugTaps(ctx); err != nil {
		return fmt.Errorf("%s: boot: %w", vm.Name, err)
	}
	return nil
}

// waitSSH waits until the VM's sshd lets the lab key in, checking the host key
// strictly against known_hosts.
func waitSSH(ctx context.Context, l *Lab, vm *VM, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := fmt.Sprintf("127.0.0.1:%d", vm.SSHPort)
	var last error
	for {
		if !alive(vm.PID, "qemu-system") {
			return fmt.Errorf("%s: wait ssh: qemu exited; console: %s", vm.Name, consoleTail(vm))
		}
		if last = banner(ctx, addr); last == nil {
			if _, last = l.SSH(ctx, vm.Name, "true"); last == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: wait ssh: %w (last: %v); console: %s", vm.Name, ctx.Err(), last, consoleTail(vm))
		case <-time.After(time.Second):
		}
	}
}

// banner succeeds once something answers with an SSH identification string (the
// user-mode forward accepts connections even before the guest listens).
func banner(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: 3 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4)
	if _, err := c.Read(buf); err != nil {
		return fmt.Errorf("no banner: %w", err)
	}
	if string(buf) != "SSH-" {
		return fmt.Errorf("no banner: got %q", buf)
	}
	return nil
}

func consoleTail(vm *VM) string {
	b, _ := os.ReadFile(vm.Console)
	return tail(string(b), 1500)
}

// SSH runs a command line on a lab host (VM or probe) with the system ssh client,
// the lab key and strict host key checking; it returns stdout.
func (l *Lab) SSH(ctx context.Context, host, command string) ([]byte, error) {
	out, err := run(ctx, "ssh", "-F", l.SSHConfig, host, command)
	if err != nil {
		return out, fmt.Errorf("%s: ssh: %w", host, err)
	}
	return out, nil
}

// PowerCycle pulls the plug on VM fw and boots the same disk again, waiting for SSH.
func (l *Lab) PowerCycle(ctx context.Context, fw string) error {
	vm, err := l.VM(fw)
	if err != nil {
		return err
	}
	if err := stop(vm.PID, "qemu-system"); err != nil {
		return fmt.Errorf("%s: power off: %w", fw, err)
	}
	cfg, _ := Config{StateDir: l.StateDir}.withDefaults()
	start := time.Now()
	w := wiringFor(vm.Name, vm.Slot)
	if err := startVM(ctx, vm, w); err != nil {
		return err
	}
	if err := l.save(); err != nil {
		return fmt.Errorf("%s: power on: %w", fw, err)
	}
	if err := waitSSH(ctx, l, vm, cfg.BootTimeout); err != nil {
		return err
	}
	vm.TimeToSSH = time.Since(start)
	return l.save()
}

// stateDirs returns the per-VM directory names under StateDir/vms.
func stateVMs(stateDir string) []string {
	ents, _ := os.ReadDir(filepath.Join(stateDir, "vms"))
	var names []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names
}
