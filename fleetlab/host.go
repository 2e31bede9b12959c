package fleetlab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// file is one per-host file written into the overlay's upper dir.
type file struct {
	path     string // inside the host
	data     []byte
	mode     os.FileMode
	uid, gid int
}

// hostFiles is everything that makes host h itself: name, address, host key, logins.
func hostFiles(h *Host, hostKey []byte, clientPub string) []file {
	auth := []byte(clientPub + "\n")
	return []file{
		{path: "/etc/hostname", data: []byte(h.Name + "\n"), mode: 0o644},
		{path: "/etc/hosts", data: []byte("127.0.0.1\tlocalhost\n127.0.1.1\t" + h.Name + "\n"), mode: 0o644},
		{path: "/etc/network/interfaces", mode: 0o644, data: []byte(fmt.Sprintf(
			"auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet static\n    address %s/%d\n",
			h.Addr, prefixLen))},
		{path: "/etc/ssh/ssh_host_ed25519_key", data: hostKey, mode: 0o600},
		{path: "/etc/ssh/ssh_host_ed25519_key.pub", data: []byte(h.HostKey + " root@" + h.Name + "\n"), mode: 0o644},
		{path: "/root/.ssh/authorized_keys", data: auth, mode: 0o600},
		{path: "/home/hf/.ssh/authorized_keys", data: auth, mode: 0o600, uid: 1000, gid: 1000},
	}
}

// writeUpper puts files into upper. Each parent directory is created with the lower
// dir's mode and owner: an upper directory's attributes win in the merged view.
func writeUpper(lower, upper string, files []file) error {
	for _, f := range files {
		if err := mkdirLike(lower, upper, filepath.Dir(f.path)); err != nil {
			return err
		}
		p := filepath.Join(upper, f.path)
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return err
		}
		if err := os.Chown(p, f.uid, f.gid); err != nil {
			return err
		}
	}
	return nil
}

func mkdirLike(lower, upper, dir string) error {
	if dir == "/" || dir == "." {
		return nil
	}
	if err := mkdirLike(lower, upper, filepath.Dir(dir)); err != nil {
		return err
	}
	dst := filepath.Join(upper, dir)
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(lower, dir), &st); err != nil {
		return fmt.Errorf("%s: not in the image: %w", dir, err)
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	if err := syscall.Chmod(dst, st.Mode&0o7777); err != nil {
		return err
	}
	return os.Chown(dst, int(st.Uid), int(st.Gid))
}

// bootScript runs as PID 1 of the host's fresh PID and mount namespaces, already in
// its network namespace: it mounts the overlay and the API filesystems (kernel
// settings read-only except net.*), pivots into the overlay and execs sysvinit
// without the capabilities that reach past the host: the machine's clock (a stock
// rc0 runs hwclock), raw I/O, modules, the kernel log.
// Arguments: lower upper work mnt console hostname marker.
const bootScript = `set -e
lower=$1 upper=$2 work=$3 m=$4 console=$5 name=$6 marker=$7
mount --make-rprivate /
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$m"
mount -t proc -o nosuid,nodev,noexec proc "$m/proc"
for p in sys sysrq-trigger; do
  [ -e "$m/proc/$p" ] || continue
  mount --bind "$m/proc/$p" "$m/proc/$p"
  mount -o remount,bind,ro "$m/proc/$p"
done
mount --bind "$m/proc/sys/net" "$m/proc/sys/net"
mount -o remount,bind,rw "$m/proc/sys/net"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$m/sys"
mount -t tmpfs -o nosuid,mode=755,size=4m tmpfs "$m/dev"
cd "$m/dev"
mknod -m 666 null c 1 3; mknod -m 666 zero c 1 5; mknod -m 666 full c 1 7
mknod -m 666 random c 1 8; mknod -m 666 urandom c 1 9; mknod -m 666 tty c 5 0
mkdir -m 755 pts; mkdir -m 1777 shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts pts
ln -s pts/ptmx ptmx; ln -s /proc/self/fd fd
ln -s /proc/self/fd/0 stdin; ln -s /proc/self/fd/1 stdout; ln -s /proc/self/fd/2 stderr
: > console
mount --bind "$console" console
mount -t tmpfs -o nosuid,nodev,mode=755,size=16m tmpfs "$m/run"
hostname "$name"
cd "$m"
pivot_root . .
umount -l .
cd /
exec /usr/bin/setpriv --bounding-set -sys_module,-sys_time,-sys_rawio,-syslog,-wake_alarm -- \
  /usr/bin/env -i container=lxc "HALTFLEET_FLEET=$marker" PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=linux /sbin/init
`

// boot starts host h's init. exited is closed when it ends (it is reaped here).
func boot(h *Host, lower, prefix string) (exited <-chan error, err error) {
	console := filepath.Join(h.Dir, "console.log")
	if err := os.WriteFile(console, nil, 0o600); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(h.Dir, "boot.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command("nsenter", "--net=/run/netns/"+h.NS, "--", "/bin/sh", "-c", bootScript, "sh",
		lower, filepath.Join(h.Dir, "upper"), filepath.Join(h.Dir, "work"), filepath.Join(h.Dir, "mnt"),
		console, h.Name, prefix)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	// Own session: a ^C at the controller's terminal never reaches a host.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true,
		Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start init: %w", err)
	}
	h.InitPID = cmd.Process.Pid
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		if err == nil {
			err = errors.New("init exited")
		}
		b, _ := os.ReadFile(filepath.Join(h.Dir, "boot.log"))
		done <- fmt.Errorf("%w: %s", err, tail(string(b), 400))
	}()
	return done, nil
}

// waitSSH returns once addr:22 sends an SSH banner, init dies, or ctx ends.
func waitSSH(ctx context.Context, addr netip.Addr, exited <-chan error) error {
	for {
		if err := sshBanner(ctx, addr); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-exited:
			return err
		case <-timeAfter(200):
		}
	}
}
