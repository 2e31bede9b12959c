package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/haltfleet/haltfleet/fleetlab"
)

// PrepareImage puts into cacheDir fleetlab's shared rootfs plus python3, which Ansible
// needs on every target and haltfleet does not. The copy sits under the same entry name
// as fleetlab's own, so fleetlab.Up with CacheDir: cacheDir boots it unchanged; a new
// fleetlab recipe gets a new name and a new copy.
func PrepareImage(ctx context.Context, cacheDir string, logf func(string, ...any)) error {
	root, err := fleetlab.Build(ctx, fleetlab.Config{Logf: logf})
	if err != nil {
		return err
	}
	entry := filepath.Join(cacheDir, filepath.Base(filepath.Dir(root)))
	if _, err := os.Stat(filepath.Join(entry, "done")); err == nil {
		return nil
	}
	logf("bench image: %s plus python3 into %s", root, entry)
	work := entry + ".work"
	if err := os.RemoveAll(work); err != nil {
		return fmt.Errorf("bench image: %w", err)
	}
	defer os.RemoveAll(work)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return fmt.Errorf("bench image: %w", err)
	}
	wroot := filepath.Join(work, "root")
	if err := command(ctx, "cp", "-a", root, wroot); err != nil {
		return fmt.Errorf("bench image: copy: %w", err)
	}
	resolv := filepath.Join(wroot, "etc", "resolv.conf")
	orig, origErr := os.ReadFile(resolv)
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return fmt.Errorf("bench image: %w", err)
	}
	if err := os.WriteFile(resolv, host, 0o644); err != nil {
		return fmt.Errorf("bench image: %w", err)
	}
	// A private mount namespace: /proc for apt goes away with the process.
	install := "mount -t proc proc \"$1\"/proc && chroot \"$1\" sh -c " +
		"'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3 && apt-get clean && rm -rf /var/lib/apt/lists/*'"
	if err := command(ctx, "unshare", "-m", "--propagation", "private", "sh", "-c", install, "sh", wroot); err != nil {
		return fmt.Errorf("bench image: apt-get install python3: %w", err)
	}
	if origErr == nil {
		err = os.WriteFile(resolv, orig, 0o644)
	} else {
		err = os.Remove(resolv)
	}
	if err != nil {
		return fmt.Errorf("bench image: %w", err)
	}
	if err := os.WriteFile(filepath.Join(work, "done"), []byte("fleetlab image plus python3\n"), 0o644); err != nil {
		return fmt.Errorf("bench image: %w", err)
	}
	if err := os.RemoveAll(entry); err != nil {
		return fmt.Errorf("bench image: %w", err)
	}
	return os.Rename(work, entry)
}

// command runs argv and returns its combined output in the error when it fails.
func command(ctx context.Context, argv ...string) error {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("%s: %w: %s", argv[0], err, tail(out, 2000))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", argv[0], err)
	}
	return nil
}

// tail keeps the last n bytes of b, where errors say what went wrong.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
