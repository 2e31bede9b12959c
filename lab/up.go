package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// Up builds what is missing, wires the namespaces, starts the probe hosts and boots
// every firewall VM (cfg.Parallel at a time), then returns once each answers SSH.
// On failure it tears down whatever it made.
func Up(ctx context.Context, cfg Config) (_ *Lab, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(statePath(cfg.StateDir)); err == nil {
		return nil, fmt.Errorf("lab: a lab is already up in %s (run down first)", cfg.StateDir)
	}
	imgs, err := Build(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("lab: build: %w", err)
	}
	byVariant := map[Variant]Image{}
	for _, i := range imgs {
		byVariant[i.Variant] = i
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("lab: state: %w", err)
	}
	l := &Lab{
		StateDir:   cfg.StateDir,
		KeyFile:    filepath.Join(cfg.StateDir, "id_ed25519"),
		KnownHosts: filepath.Join(cfg.StateDir, "known_hosts"),
		SSHConfig:  filepath.Join(cfg.StateDir, "ssh_config"),
		Inventory:  filepath.Join(cfg.StateDir, "hosts.yml"),
		Started:    time.Now().UTC(),
	}
	defer func() {
		if err != nil {
			_ = Down(context.Background(), cfg)
		}
	}()
	if err := l.save(); err != nil { // recorded first so Down finds a half-built lab
		return nil, fmt.Errorf("lab: state: %w", err)
	}
	authorized, err := newKey(ctx, l.KeyFile, "haltfleet-lab")
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	vmKeys, probeKeys := map[string]string{}, map[string]string{}
	for i, fw := range cfg.Firewalls {
		slot := cfg.Slot + i
		dir := vmDir(cfg.StateDir, fw.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		img := byVariant[fw.Variant]
		w := wiringFor(fw.Name, slot)
		vm := VM{Name: fw.Name, Variant: fw.Variant, Slot: slot, SSHPort: cfg.BasePort + slot, MemoryMiB: cfg.MemoryMiB,
			Disk: filepath.Join(dir, "disk.raw"), Console: filepath.Join(dir, "console.log"),
			Kernel: img.Kernel, Initrd: img.Initrd, LanNS: w.lanNS, WanNS: w.wanNS}
		if err := portFree(vm.SSHPort); err != nil {
			return nil, fmt.Errorf("%s: ssh port: %w", fw.Name, err)
		}
		if vmKeys[fw.Name], err = newKey(ctx, filepath.Join(dir, "ssh_host_ed25519_key"), fw.Name); err != nil {
			return nil, err
		}
		l.VMs = append(l.VMs, vm)
		for _, side := range []string{"lan", "wan"} {
			p := ProbeHost{Name: fw.Name + "-" + side, NS: w.lanNS, Addr: w.ctlAddr(side, false), NetAddr: lanHostIP}
			if side == "wan" {
				p.NS, p.NetAddr = w.wanNS, wanHostIP
			}
			if err := os.MkdirAll(probeDir(cfg.StateDir, p.Name), 0o700); err != nil {
				return nil, err
			}
			if probeKeys[p.Name], err = newKey(ctx, filepath.Join(probeDir(cfg.StateDir, p.Name), "ssh_host_ed25519_key"), p.Name); err != nil {
				return nil, err
			}
			l.Probes = append(l.Probes, p)
		}
	}
	if err := l.writeClientFiles(vmKeys, probeKeys); err != nil {
		return nil, fmt.Errorf("lab: client files: %w", err)
	}
	if err := l.save(); err != nil {
		return nil, err
	}

	start := time.Now()
	for _, vm := range l.VMs {
		// Leftovers of a lab whose process died (its ports are free, checked above).
		w := wiringFor(vm.Name, vm.Slot)
		killNS(ctx, w.lanNS)
		killNS(ctx, w.wanNS)
		if err := w.tearDown(ctx); err != nil {
			return nil, fmt.Errorf("%s: stale wiring: %w", vm.Name, err)
		}
		if err := w.setUp(ctx); err != nil {
			return nil, err
		}
	}
	for i := range l.Probes {
		p := &l.Probes[i]
		if err := startProbeSSHD(ctx, l, p); err != nil {
			return nil, err
		}
		if p.NetAddr == wanHostIP {
			if err := startListeners(ctx, l, p); err != nil {
				return nil, err
			}
		}
	}
	if err := l.save(); err != nil {
		return nil, err
	}
	cfg.Logf("network and probe hosts ready in %s", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2) // disk copies are I/O, not worth more
	for i := range l.VMs {
		vm := &l.VMs[i]
		g.Go(func() error {
			return prepareDisk(gctx, byVariant[vm.Variant], vm, filepath.Join(vmDir(cfg.StateDir, vm.Name), "ssh_host_ed25519_key"), authorized)
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	cfg.Logf("disks ready in %s", time.Since(start).Round(time.Millisecond))

	if err := bootAll(ctx, cfg, l); err != nil {
		return nil, err
	}
	return l, l.save()
}

// bootAll boots the VMs, cfg.Parallel at a time; a slot is held from qemu start to
// SSH because TCG boots are CPU-bound. One VM failing does not stop its siblings.
func bootAll(ctx context.Context, cfg Config, l *Lab) error {
	sem := make(chan struct{}, cfg.Parallel)
	errs := make([]error, len(l.VMs))
	done := make(chan int)
	for i := range l.VMs {
		go func() {
			defer func() { done <- i }()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			vm := &l.VMs[i]
			start := time.Now()
			if errs[i] = startVM(ctx, vm, wiringFor(vm.Name, vm.Slot)); errs[i] != nil {
				return
			}
			cfg.Logf("%s: qemu pid %d, waiting for ssh on 127.0.0.1:%d", vm.Name, vm.PID, vm.SSHPort)
			if errs[i] = waitSSH(ctx, l, vm, cfg.BootTimeout); errs[i] == nil {
				vm.TimeToSSH = time.Since(start)
				cfg.Logf("%s (%s): ssh after %s", vm.Name, vm.Variant, vm.TimeToSSH.Round(100*time.Millisecond))
			}
		}()
	}
	for range l.VMs {
		<-done
	}
	_ = l.save() // pids of whatever started, for Down
	return errors.Join(errs...)
}

func portFree(port int) error {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	return ln.Close()
}

// Down stops every process of the lab, removes its links and namespaces and deletes
// StateDir. It works from the recorded state and also sweeps by name, so a crashed
// Up leaves nothing behind either.
func Down(ctx context.Context, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	var errs []error
	l, openErr := Open(cfg)
	if openErr != nil && !errors.Is(openErr, ErrNoLab) {
		errs = append(errs, openErr)
	}
	var wirings []wiring
	if l != nil {
		for _, vm := range l.VMs {
			if err := stop(vm.PID, "qemu-system"); err != nil {
				errs = append(errs, fmt.Errorf("%s: stop: %w", vm.Name, err))
			}
			wirings = append(wirings, wiringFor(vm.Name, vm.Slot))
		}
		for _, p := range l.Probes {
			if err := stop(p.SSHDPID, "sshd"); err != nil {
				errs = append(errs, fmt.Errorf("%s: stop sshd: %w", p.Name, err))
			}
			for name, pid := range p.Listeners {
				if err := stop(pid, "socat"); err != nil {
					errs = append(errs, fmt.Errorf("%s: stop %s: %w", p.Name, name, err))
				}
			}
		}
	}
	// Sweep what the record may miss: VMs with a directory or pid file but no record
	// (Up died between steps), and the configured firewalls' wiring.
	for _, name := range stateVMs(cfg.StateDir) {
		if pid, err := readPID(filepath.Join(vmDir(cfg.StateDir, name), "qemu.pid")); err == nil {
			if err := stop(pid, "qemu-system"); err != nil {
				errs = append(errs, fmt.Errorf("%s: stop: %w", name, err))
			}
		}
		_, _ = run(ctx, "umount", filepath.Join(vmDir(cfg.StateDir, name), "mnt"))
	}
	for i, fw := range cfg.Firewalls {
		wirings = append(wirings, wiringFor(fw.Name, cfg.Slot+i))
	}
	seen := map[string]bool{}
	for _, w := range wirings {
		if seen[w.lanNS] {
			continue
		}
		seen[w.lanNS] = true
		// sshd children (sessions) may still hold the namespace; kill what lives there.
		for _, ns := range []string{w.lanNS, w.wanNS} {
			if nsExists(ctx, ns) {
				killNS(ctx, ns)
			}
		}
		if err := w.tearDown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(cfg.StateDir); err != nil {
		errs = append(errs, fmt.Errorf("lab: remove state: %w", err))
	}
	return errors.Join(errs...)
}

// killNS kills every process left in namespace ns (sessions forked by its sshd).
func killNS(ctx context.Context, ns string) {
	out, err := run(ctx, "ip", "netns", "pids", ns)
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 {
			_ = stop(pid, "")
		}
	}
}
