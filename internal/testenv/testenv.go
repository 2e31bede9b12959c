// Package testenv decides whether a test that needs real parts (root, sshd, qemu,
// namespaces) may run. On a laptop a missing part skips; in CI (CI=true) it fails.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether missing prerequisites must fail instead of skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing skips (or fails in CI) the test with a reason.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("prerequisite missing in CI: "+format, args...)
	}
	t.Skipf("prerequisite missing: "+format, args...)
}

// NeedRoot requires uid 0.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root")
	}
}

// NeedCommand requires each named program on PATH (or as an absolute path) and returns
// the resolved path of the first one.
func NeedCommand(t testing.TB, names ...string) string {
	t.Helper()
	first := ""
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			Missing(t, "needs %s on PATH", n)
		}
		if first == "" {
			first = p
		}
	}
	return first
}
