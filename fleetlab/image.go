package fleetlab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// suite and mirror: every host runs the same Debian 12 rootfs.
const (
	suite  = "bookworm"
	mirror = "http://deb.debian.org/debian"
)

// packages of the shared rootfs. orphan-sysvinit-scripts brings the nftables init
// script bookworm's nftables lacks; ifupdown configures each host's eth0.
var packages = []string{
	"sysvinit-core", "orphan-sysvinit-scripts", "ifupdown", "openssh-server", "nftables",
	"iproute2", "sudo", "procps", "netbase", "netcat-openbsd", "iputils-ping",
}

// imageHook prepares what every host shares; per-host files go into its upper dir.
// The getty lines go: a host has no terminals and init would respawn them forever.
const imageHook = `set -e
r="$1"
: > "$r/etc/fstab"
rm -f "$r"/etc/ssh/ssh_host_*
mkdir -p "$r/etc/ssh/sshd_config.d"
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n' > "$r/etc/ssh/sshd_config.d/haltfleet-fleet.conf"
sed -i -e '/^[0-9]*:[0-9]*:respawn:.*getty/d' "$r/etc/inittab"
echo uninitialized > "$r/etc/machine-id"
chroot "$r" useradd -m -u 1000 -U -s /bin/bash hf
printf 'hf ALL=(ALL) NOPASSWD:ALL\n' > "$r/etc/sudoers.d/hf"
chmod 0440 "$r/etc/sudoers.d/hf"
install -d -m 0700 "$r/root/.ssh"
install -d -m 0700 -o 1000 -g 1000 "$r/home/hf/.ssh"
echo fleet > "$r/etc/hostname"
printf 'auto lo\niface lo inet loopback\n' > "$r/etc/network/interfaces"
rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/*
`

func recipeHash() string {
	h := sha256.New()
	fmt.Fprintf(h, "fleet-v1\n%s\n%s\n%s\n%s\n", suite, mirror, strings.Join(packages, ","), imageHook)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// imageDir is the cache entry; its root/ is the shared lower dir of every overlay.
func imageDir(cacheDir string) string {
	return filepath.Join(cacheDir, "fleet-"+recipeHash())
}

// ensureImage builds the shared rootfs unless the cache has it and returns its root.
func ensureImage(ctx context.Context, cfg Config) (string, error) {
	dir := imageDir(cfg.CacheDir)
	root := filepath.Join(dir, "root")
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return root, nil
	}
	debs := filepath.Join(cfg.CacheDir, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return "", fmt.Errorf("fleetlab: cache: %w", err)
	}
	// One builder at a time across processes (a test and a CLI run may race).
	unlock, err := lockFile(dir + ".lock")
	if err != nil {
		return "", fmt.Errorf("fleetlab: build lock: %w", err)
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return root, nil
	}
	start := time.Now()
	cfg.Logf("fleet image: mmdebstrap into %s", dir)
	work := dir + ".work"
	if err := os.RemoveAll(work); err != nil {
		return "", fmt.Errorf("fleetlab: build: %w", err)
	}
	defer os.RemoveAll(work)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return "", fmt.Errorf("fleetlab: build: %w", err)
	}
	// The .deb cache is the VM lab's (same layout), so both share downloads.
	out := filepath.Join(debs, fmt.Sprintf(".in-fleet-%d", os.Getpid()))
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	defer os.RemoveAll(out)
	argv := []string{"mmdebstrap", "--variant=minbase", "--mode=root",
		"--include=" + strings.Join(packages, ","),
		"--skip=download/empty", "--skip=essential/unlink",
		"--setup-hook=mkdir -p " + shq(debs) + ` "$1"/var/cache/apt/archives/`,
		"--setup-hook=cp " + shq(debs) + `/*.deb "$1"/var/cache/apt/archives/ 2>/dev/null || true`,
		"--customize-hook=sync-out /var/cache/apt/archives " + shq(out),
		"--customize-hook=" + imageHook,
		suite, filepath.Join(work, "root"), mirror,
	}
	if _, err := run(ctx, argv...); err != nil {
		return "", fmt.Errorf("fleetlab: mmdebstrap: %w", err)
	}
	ents, _ := os.ReadDir(out)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".deb") {
			_ = os.Rename(filepath.Join(out, e.Name()), filepath.Join(debs, e.Name()))
		}
	}
	if err := os.WriteFile(filepath.Join(work, "done"), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return "", err
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(work, dir); err != nil {
		return "", fmt.Errorf("fleetlab: cache: %w", err)
	}
	cfg.Logf("fleet image: built in %s", time.Since(start).Round(time.Second))
	return root, nil
}
