package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// suite is the Debian release every image is built from.
const suite = "bookworm"

// imageSize leaves room for what haltfleet installs; the file is sparse.
const imageSize = 2 << 30

// recipe is what goes into one image; its hash names the cache entry, so any change
// here rebuilds.
type recipe struct {
	packages []string
	hook     string // extra customize-hook lines, run with the rootfs as $1
}

var common = []string{
	"linux-image-amd64", "udev", "kmod", "openssh-server", "nftables", "iproute2",
	"sudo", "netbase", "procps", "util-linux", "iputils-ping", "less",
}

// sysvScripts: bookworm's nftables ships no init script; this package does.
var sysvScripts = []string{"ifupdown", "orphan-sysvinit-scripts"}

var recipes = map[Variant]recipe{
	Systemd:  {packages: []string{"systemd-sysv", "ifupdown"}},
	SysVinit: {packages: append([]string{"sysvinit-core"}, sysvScripts...)},
	OpenRC:   {packages: append([]string{"openrc", "sysvinit-core"}, sysvScripts...)},
	Runit:    {packages: append([]string{"runit-init"}, sysvScripts...)},
	Networkd: {
		packages: []string{"systemd-sysv"},
		hook:     `chroot "$1" systemctl enable systemd-networkd.service`,
	},
}

// baseHook prepares what every VM shares; per-VM parts are injected at Up.
const baseHook = `set -e
r="$1"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' > "$r/etc/fstab"
rm -f "$r"/etc/ssh/ssh_host_*
mkdir -p "$r/etc/ssh/sshd_config.d"
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n' > "$r/etc/ssh/sshd_config.d/haltfleet-lab.conf"
echo uninitialized > "$r/etc/machine-id"
rm -f "$r/var/lib/dbus/machine-id"
chroot "$r" useradd -m -u 1000 -U -s /bin/bash hf
printf 'hf ALL=(ALL) NOPASSWD:ALL\n' > "$r/etc/sudoers.d/hf"
chmod 0440 "$r/etc/sudoers.d/hf"
install -d -m 0700 "$r/root/.ssh"
install -d -m 0700 -o 1000 -g 1000 "$r/home/hf/.ssh"
echo haltfleet-lab > "$r/etc/hostname"
if [ -d "$r/etc/network" ]; then
  printf 'auto lo\niface lo inet loopback\n' > "$r/etc/network/interfaces"
fi
`

// Image is a built, cached variant.
type Image struct {
	Variant Variant
	Dir     string // cache entry
	Rootfs  string // raw ext4
	Kernel  string
	Initrd  string
	Built   bool          // false when it came from the cache
	Took    time.Duration // build time when Built
}

func (r recipe) hash(mirror string) string {
	h := sha256.New()
	fmt.Fprintf(h, "v1\n%s\n%s\n%s\n%s\n%s\n", suite, mirror,
		strings.Join(append(append([]string{}, common...), r.packages...), ","), baseHook, r.hook)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func imageFor(cfg Config, v Variant) Image {
	dir := filepath.Join(cfg.CacheDir, fmt.Sprintf("%s-%s", v, recipes[v].hash(cfg.Mirror)))
	return Image{Variant: v, Dir: dir,
		Rootfs: filepath.Join(dir, "rootfs.raw"),
		Kernel: filepath.Join(dir, "vmlinuz"),
		Initrd: filepath.Join(dir, "initrd.img"),
	}
}

// Build makes (or finds in the cache) the image of every variant cfg.Firewalls uses.
func Build(ctx context.Context, cfg Config) ([]Image, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var want []Variant
	seen := map[Variant]bool{}
	for _, fw := range cfg.Firewalls {
		if !seen[fw.Variant] {
			seen[fw.Variant] = true
			want = append(want, fw.Variant)
		}
	}
	return buildVariants(ctx, cfg, want)
}

func buildVariants(ctx context.Context, cfg Config, want []Variant) ([]Image, error) {
	if err := os.MkdirAll(filepath.Join(cfg.CacheDir, "debs"), 0o755); err != nil {
		return nil, fmt.Errorf("lab: cache: %w", err)
	}
	imgs := make([]Image, len(want))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.BuildJobs)
	for i, v := range want {
		g.Go(func() error {
			img, err := buildOne(gctx, cfg, v)
			imgs[i] = img
			return err
		})
	}
	return imgs, g.Wait()
}

func buildOne(ctx context.Context, cfg Config, v Variant) (Image, error) {
	img := imageFor(cfg, v)
	// One builder per variant at a time, across processes.
	unlock, err := lockFile(img.Dir + ".lock")
	if err != nil {
		return img, fmt.Errorf("%s: build lock: %w", v, err)
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(img.Dir, "done")); err == nil {
		return img, nil
	}
	start := time.Now()
	cfg.Logf("build %s: mmdebstrap into %s", v, img.Dir)
	work := img.Dir + ".work"
	if err := os.RemoveAll(work); err != nil {
		return img, fmt.Errorf("%s: build: %w", v, err)
	}
	defer os.RemoveAll(work)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return img, fmt.Errorf("%s: build: %w", v, err)
	}
	root := filepath.Join(work, "root")
	if err := mmdebstrap(ctx, cfg, v, root); err != nil {
		return img, fmt.Errorf("%s: mmdebstrap: %w", v, err)
	}
	cfg.Logf("build %s: rootfs done after %s", v, time.Since(start).Round(time.Second))
	for src, dst := range map[string]string{"vmlinuz-*": "vmlinuz", "initrd.img-*": "initrd.img"} {
		m, _ := filepath.Glob(filepath.Join(root, "boot", src))
		if len(m) != 1 {
			return img, fmt.Errorf("%s: kernel: want one /boot/%s, found %d", v, src, len(m))
		}
		if _, err := run(ctx, "cp", m[0], filepath.Join(work, dst)); err != nil {
			return img, fmt.Errorf("%s: kernel: %w", v, err)
		}
	}
	raw := filepath.Join(work, "rootfs.raw")
	if err := os.WriteFile(raw, nil, 0o600); err != nil {
		return img, err
	}
	if err := os.Truncate(raw, imageSize); err != nil {
		return img, fmt.Errorf("%s: image: %w", v, err)
	}
	if _, err := run(ctx, "mkfs.ext4", "-q", "-F", "-L", "hfroot", "-d", root, raw); err != nil {
		return img, fmt.Errorf("%s: mkfs: %w", v, err)
	}
	if err := os.RemoveAll(root); err != nil {
		return img, err
	}
	if err := os.WriteFile(filepath.Join(work, "done"), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return img, err
	}
	_ = os.RemoveAll(img.Dir)
	if err := os.Rename(work, img.Dir); err != nil {
		return img, fmt.Errorf("%s: cache: %w", v, err)
	}
	pruneOld(img)
	img.Built, img.Took = true, time.Since(start)
	cfg.Logf("build %s: done in %s", v, img.Took.Round(time.Second))
	return img, nil
}

// mmdebstrap builds the rootfs directory; downloaded .debs are kept in CacheDir/debs
// (the recipe from mmdebstrap(1)) so later variants and rebuilds skip most downloads.
func mmdebstrap(ctx context.Context, cfg Config, v Variant, root string) error {
	r := recipes[v]
	debs := filepath.Join(cfg.CacheDir, "debs")
	argv := []string{"mmdebstrap", "--variant=minbase", "--mode=root",
		"--include=" + strings.Join(append(append([]string{}, common...), r.packages...), ","),
		"--skip=download/empty", "--skip=essential/unlink",
		"--setup-hook=mkdir -p " + shq(debs) + ` "$1"/var/cache/apt/archives/`,
		// Only the .debs: "partial/" and the in-flight directories stay out.
		"--setup-hook=cp " + shq(debs) + `/*.deb "$1"/var/cache/apt/archives/ 2>/dev/null || true`,
		"--customize-hook=" + baseHook,
	}
	if r.hook != "" {
		argv = append(argv, "--customize-hook="+r.hook)
	}
	// Out into a private directory, then renamed in file by file: a parallel build's
	// sync-in never sees a half-copied .deb.
	out := filepath.Join(debs, fmt.Sprintf(".in-%s-%d", v, os.Getpid()))
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(out)
	argv = append(argv,
		"--customize-hook=sync-out /var/cache/apt/archives "+shq(out),
		suite, root, cfg.Mirror)
	if _, err := run(ctx, argv...); err != nil {
		return err
	}
	ents, _ := os.ReadDir(out)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".deb") {
			_ = os.Rename(filepath.Join(out, e.Name()), filepath.Join(debs, e.Name()))
		}
	}
	return nil
}

// pruneOld removes finished images of the same variant built from an older recipe,
// so the cache holds one image per variant.
func pruneOld(img Image) {
	old, _ := filepath.Glob(filepath.Join(filepath.Dir(img.Dir), string(img.Variant)+"-*"))
	for _, d := range old {
		if d == img.Dir || strings.Contains(filepath.Base(d), ".") {
			continue // ours, a lock file or a build in progress
		}
		if _, err := os.Stat(filepath.Join(d, "done")); err == nil {
			_ = os.RemoveAll(d)
			_ = os.Remove(d + ".lock")
		}
	}
}
