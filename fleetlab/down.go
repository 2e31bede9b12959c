package fleetlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Down removes every trace of the fleet of cfg.StateDir and cfg.Prefix: it kills each
// host's processes (SIGKILL to an init ends its whole PID namespace, and with it the
// overlay mount), deletes the namespaces (and so every veth and the bridge), the
// controller link and the state. It works from the files on disk after the creating
// process died, and also sweeps by prefix for what no record names. A fleet that is
// not there is not an error.
func Down(ctx context.Context, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	start := time.Now()
	hosts, _ := loadHosts(cfg.StateDir) // a torn record must not stop the sweep
	re := ourNS(cfg.Prefix)
	names := map[string]bool{}
	for _, h := range hosts {
		if re.MatchString(h.NS) {
			names[h.NS] = true
		}
	}
	for _, ns := range namespaces(ctx, re) {
		names[ns] = true
	}
	var errs []error
	if err := killFleet(ctx, cfg.Prefix, hosts, names); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, unmountUnder(cfg.StateDir)...)
	for ns := range names {
		if _, err := os.Stat("/run/netns/" + ns); err != nil {
			continue
		}
		if _, err := run(ctx, "ip", "netns", "del", ns); err != nil {
			errs = append(errs, fmt.Errorf("%s: delete namespace: %w", ns, err))
		}
	}
	// Gone with the bridge namespace as its peer; only a half-made one stays.
	if linkExists(ctx, ctlLink(cfg.Prefix)) {
		if _, err := run(ctx, "ip", "link", "del", ctlLink(cfg.Prefix)); err != nil {
			errs = append(errs, fmt.Errorf("%s: delete link: %w", ctlLink(cfg.Prefix), err))
		}
	}
	if err := removeState(cfg.StateDir); err != nil {
		errs = append(errs, err)
	}
	cfg.Logf("fleet %s: down in %s (%d hosts recorded, %d namespaces)", cfg.Prefix,
		time.Since(start).Round(time.Millisecond), len(hosts), len(names))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fleetlab: down: %w", err)
	}
	return nil
}

// killFleet SIGKILLs every recorded init, then every process the /proc sweep finds,
// until none is left.
func killFleet(ctx context.Context, prefix string, hosts []Host, names map[string]bool) error {
	inodes := map[uint64]bool{}
	for ns := range names {
		if ino := nsInode("/run/netns/" + ns); ino != 0 {
			inodes[ino] = true
		}
	}
	for _, h := range hosts {
		if ours(h.InitPID, prefix) {
			_ = syscall.Kill(h.InitPID, syscall.SIGKILL)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		pids := fleetProcs(prefix, inodes)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%d processes survived SIGKILL (first pid %d)", len(pids), pids[0])
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// unmountUnder detaches any mount below dir in this mount namespace. Host overlays
// live in the hosts' own mount namespaces, so normally there is none.
func unmountUnder(dir string) []error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, m := range mountsUnder(abs) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	return errs
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	fh, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer fh.Close()
	var ms []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			ms = append([]string{mp}, ms...)
		}
	}
	return ms
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeState deletes what Up wrote in dir, then dir itself if nothing else is there.
func removeState(dir string) error {
	var errs []error
	for _, p := range []string{"hosts", "rulesets", "fleet.json", "fleet.json.tmp", "id_ed25519",
		"id_ed25519.pub", "known_hosts", "hosts.yml"} {
		if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
			errs = append(errs, err)
		}
	}
	_ = os.Remove(dir) // fails, rightly, when the directory holds someone else's files
	return errors.Join(errs...)
}
