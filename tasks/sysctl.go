package tasks

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/haltfleet/haltfleet/runner"
)

// SysctlPath is the file that makes haltfleet's sysctls survive a reboot.
const SysctlPath = "/etc/sysctl.d/99-haltfleet.conf"

// ValidateSysctl checks a key and value from the inventory. Keys use sysctl(8) spelling
// (dots or slashes) with no empty, "." or ".." component; values are one line.
func ValidateSysctl(key, value string) error {
	if key == "" || len(key) > 256 {
		return fmt.Errorf("sysctl key %q: empty or too long", key)
	}
	for _, c := range key {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("_.-/", c)) {
			return fmt.Errorf("sysctl key %q: only a-z 0-9 _ . - / are allowed", key)
		}
	}
	// No empty, "." or ".." component, and no leading "-" that sysctl would take as an option.
	if strings.Contains(key, "..") || strings.Contains(key, "//") || strings.Contains(key, "./") || strings.Contains(key, "/.") ||
		strings.ContainsAny(key[:1], "./-") || strings.ContainsAny(key[len(key)-1:], "./") {
		return fmt.Errorf("sysctl key %q: empty component or leading -", key)
	}
	if strings.ContainsAny(value, "\n\r\x00") {
		return fmt.Errorf("sysctl %s: value must be a single line", key)
	}
	if len(value) > 4096 {
		return fmt.Errorf("sysctl %s: value too long", key)
	}
	return nil
}

// normalizeSysctlValue compares values as sysctl prints them: fields separated by tabs
// (ip_local_port_range) equal the same fields separated by spaces.
func normalizeSysctlValue(v string) string { return strings.Join(strings.Fields(v), " ") }

// SysctlFileContent is the persistence file for want, keys sorted.
func SysctlFileContent(want map[string]string) string {
	keys := sortedKeys(want)
	var sb strings.Builder
	sb.WriteString("# Written by haltfleet; edit the inventory's sysctls instead.\n")
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s = %s\n", k, normalizeSysctlValue(want[k]))
	}
	return sb.String()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// PlanSysctls reads the current values of want's keys and the persistence file in one
// round trip and returns a KindSysctl change per differing key plus a KindFile (or a
// KindRemove when want is empty and the file exists) for SysctlPath.
func PlanSysctls(ctx context.Context, r runner.Runner, host string, want map[string]string) ([]Change, error) {
	keys := sortedKeys(want)
	if err := validateSysctls(host, want); err != nil {
		return nil, err
	}
	s := newSectioned()
	writeSysctlRead(s, keys)
	sec, code, stderr, err := s.exec(ctx, r, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: sysctl: %w", host, err)
	}
	if code != 0 {
		return nil, fmt.Errorf("%s: sysctl: read script exited %d: %s", host, code, stderr)
	}
	return sysctlChanges(host, want, sec)
}

func validateSysctls(host string, want map[string]string) error {
	for _, k := range sortedKeys(want) {
		if err := ValidateSysctl(k, want[k]); err != nil {
			return fmt.Errorf("%s: sysctl: %w", host, err)
		}
	}
	return nil
}

// sysctlProcPath is the /proc/sys file of a key as procps sysctl finds it: a key whose
// first separator is "/" is a path already; otherwise "." and "/" swap (a VLAN interface
// eth0.5 is written eth0/5 in a dotted key).
func sysctlProcPath(key string) string {
	if i := strings.IndexAny(key, "./"); i >= 0 && key[i] == '/' {
		return "/proc/sys/" + key
	}
	return "/proc/sys/" + strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, key)
}

// writeSysctlRead reads every key from /proc/sys in one grep (what sysctl -n reads,
// without a process per key; the shell's read builtin cannot: /proc/sys answers a read
// at a non-zero offset with end of file) and the persistence file. Keys must be validated.
func writeSysctlRead(s *sectioned, keys []string) {
	s.line("mark sysctls")
	s.line(sysctlGrep(keys))
	s.line(fmt.Sprintf("if [ -e %s ]; then mark sysctl-file; cat %s; fi", runner.Quote(SysctlPath), runner.Quote(SysctlPath)))
}

// sysctlGrep prints "PATH:LINE" for every line of every key's file; a missing key prints
// nothing.
func sysctlGrep(keys []string) string {
	var b strings.Builder
	b.WriteString("grep -H -e '' --")
	for _, k := range keys {
		b.WriteString(" " + runner.Quote(sysctlProcPath(k)))
	}
	b.WriteString(" 2>/dev/null; true")
	return b.String()
}

// sysctlValues parses sysctlGrep's output: key → value (lines joined by newlines);
// absent keys are missing on this kernel.
func sysctlValues(keys []string, out string) map[string]string {
	vals := map[string]string{}
	lines := strings.Split(out, "\n")
	for _, k := range keys {
		prefix := sysctlProcPath(k) + ":"
		var got []string
		found := false
		for _, l := range lines {
			if v, ok := strings.CutPrefix(l, prefix); ok {
				got, found = append(got, v), true
			}
		}
		if found {
			vals[k] = strings.Join(got, "\n")
		}
	}
	return vals
}

// sysctlChanges compares a sysctl read with want.
func sysctlChanges(host string, want map[string]string, sec map[string]string) ([]Change, error) {
	keys := sortedKeys(want)
	vals := sysctlValues(keys, sec["sysctls"])
	var out []Change
	for _, k := range keys {
		cur, ok := vals[k]
		if !ok {
			return nil, fmt.Errorf("%s: sysctl: %s does not exist on this kernel", host, k)
		}
		if normalizeSysctlValue(cur) != normalizeSysctlValue(want[k]) {
			out = append(out, Change{Host: host, Stage: "sysctl", Kind: KindSysctl, Key: k,
				Summary: fmt.Sprintf("set %s = %s (now %s)", k, normalizeSysctlValue(want[k]), normalizeSysctlValue(cur)),
				Old:     cur, New: normalizeSysctlValue(want[k])})
		}
	}
	cur, exists := sec["sysctl-file"]
	switch {
	case len(want) == 0 && exists:
		out = append(out, Change{Host: host, Stage: "sysctl", Kind: KindRemove, Path: SysctlPath,
			Summary: "remove " + SysctlPath + " (no sysctls in the inventory)", Old: cur,
			Diff: UnifiedDiff(SysctlPath, "/dev/null", cur, "")})
	case len(want) > 0:
		if content := SysctlFileContent(want); !exists || cur != content {
			out = append(out, Change{Host: host, Stage: "sysctl", Kind: KindFile, Path: SysctlPath, Mode: 0o644,
				Summary: "keep the sysctls across reboots in " + SysctlPath, Old: cur, New: content,
				Diff: UnifiedDiff(SysctlPath, SysctlPath+" (haltfleet)", cur, content)})
		}
	}
	return out, nil
}

// ApplySysctl sets one KindSysctl change at runtime.
func ApplySysctl(ctx context.Context, r runner.Runner, ch Change) error {
	if ch.Kind != KindSysctl {
		return fmt.Errorf("%s: sysctl: ApplySysctl got a %s change", r.Name(), ch.Kind)
	}
	if err := ValidateSysctl(ch.Key, ch.New); err != nil {
		return fmt.Errorf("%s: sysctl: %w", r.Name(), err)
	}
	cmd := "sysctl -q -w " + runner.Quote(ch.Key+"="+ch.New)
	if _, err := r.Exec(ctx, runner.Cmd{Command: cmd, Sudo: true}); err != nil {
		return fmt.Errorf("%s: sysctl: set %s: %w", r.Name(), ch.Key, err)
	}
	return nil
}
