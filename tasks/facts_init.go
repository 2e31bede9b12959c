package tasks

import "strings"

// initResolver names PID 1's init system from the dump; ok is false when the evidence
// does not fit. Resolvers run in order, first hit wins.
type initResolver func(p pid1) (string, bool)

// pid1 is the evidence about PID 1 the script collects. exe needs root; sbinInit is
// where /sbin/init points, readable by anyone, and stands in for exe when it is missing.
type pid1 struct {
	comm, exe, sbinInit string
	systemdRun          bool // /run/systemd/system exists: systemd booted this host
	openrcRun           bool // /run/openrc exists: OpenRC manages services
}

func (p pid1) binary() string {
	if p.exe != "" {
		return p.exe
	}
	return p.sbinInit
}

var initResolvers = []initResolver{isSystemd, isOpenRC, isRunit, isBusybox, isSysvinit}

// isSystemd: systemd renames itself, so comm says so even when booted as /sbin/init.
func isSystemd(p pid1) (string, bool) {
	return InitSystemd, p.comm == "systemd" || (p.comm == "init" && p.systemdRun && strings.Contains(p.binary(), "systemd"))
}

// isOpenRC: OpenRC on top of sysvinit or busybox init, or as its own openrc-init.
func isOpenRC(p pid1) (string, bool) {
	return InitOpenRC, p.comm == "openrc-init" || (p.comm == "init" && p.openrcRun)
}

func isRunit(p pid1) (string, bool) {
	return InitRunit, p.comm == "runit" || p.comm == "runit-init"
}

func isBusybox(p pid1) (string, bool) {
	return InitBusybox, p.comm == "init" && strings.Contains(p.binary(), "busybox")
}

// isSysvinit: a real init binary that is neither systemd, busybox nor upstart.
func isSysvinit(p pid1) (string, bool) {
	b := p.binary()
	return InitSysvinit, p.comm == "init" && strings.HasSuffix(b, "/init") &&
		!strings.Contains(b, "systemd") && !strings.Contains(b, "busybox") && !strings.Contains(b, "upstart")
}

func resolveInit(d dump) (name, base, comm string) {
	p := pid1{
		comm:       pid1Comm(d),
		exe:        linkTarget(d.section("pid1-exe")),
		sbinInit:   linkTarget(d.section("sbin-init")),
		systemdRun: d.exists("/run/systemd/system"),
		openrcRun:  d.exists("/run/openrc"),
	}
	// A deleted-and-replaced binary reads "/usr/lib/systemd/systemd (deleted)" after upgrades.
	p.exe = strings.TrimSuffix(p.exe, " (deleted)")
	name = InitUnknown
	for _, r := range initResolvers {
		if n, ok := r(p); ok {
			name = n
			break
		}
	}
	if name == InitOpenRC {
		base = openrcBase(p)
	}
	return name, base, p.comm
}

// openrcBase tells which PID 1 OpenRC runs under; Alpine uses busybox init, Debian sysvinit.
func openrcBase(p pid1) string {
	if p.comm == "openrc-init" {
		return InitOpenRC
	}
	for _, r := range []initResolver{isBusybox, isSysvinit} {
		if n, ok := r(p); ok {
			return n
		}
	}
	return InitUnknown
}

// containerResolver returns the container type from one source, "" when it says none.
type containerResolver func(d dump) string

var containerResolvers = []containerResolver{
	func(d dump) string { // systemd-detect-virt -c prints "none" outside containers
		if v := firstWord(d.section("detect-virt")); v != "none" {
			return v
		}
		return ""
	},
	func(d dump) string { s, _ := d.file("/run/systemd/container"); return firstWord(s) },
	func(d dump) string { s, _ := d.file("/run/container_type"); return firstWord(s) },
	func(d dump) string {
		v, _ := strings.CutPrefix(d.section("environ-container"), "container=")
		return firstWord(v)
	},
	func(d dump) string {
		if d.exists("/.dockerenv") {
			return "docker"
		}
		return ""
	},
	func(d dump) string {
		if d.exists("/run/.containerenv") {
			return "podman"
		}
		return ""
	},
}

func resolveContainer(d dump) string {
	for _, r := range containerResolvers {
		if c := r(d); c != "" {
			return strings.ToLower(c)
		}
	}
	return ""
}

// goarch maps uname -m to Go's GOARCH spelling, which names the idle-init binary to ship.
var goarch = map[string]string{
	"x86_64": "amd64", "amd64": "amd64",
	"i386": "386", "i486": "386", "i586": "386", "i686": "386",
	"aarch64": "arm64", "arm64": "arm64", "aarch64_be": "arm64be",
	"armv5tel": "arm", "armv5tejl": "arm", "armv6l": "arm", "armv7l": "arm", "armv7": "arm", "armv8l": "arm", "arm": "arm",
	"ppc64le": "ppc64le", "ppc64": "ppc64",
	"s390x":   "s390x",
	"riscv64": "riscv64",
	"mips":    "mips", "mips64": "mips64",
	"loongarch64": "loong64",
}

func normaliseArch(machine string) string { return goarch[machine] }

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(l)
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// pid1Comm reads /proc/1/comm, or /proc/1/stat ("1 (init) S ...") on kernels before
// 2.6.33, which had no comm file.
func pid1Comm(d dump) string {
	if s, ok := d.file("/proc/1/comm"); ok {
		return firstLine(s)
	}
	s := d.section("pid1-stat")
	i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if i < 0 || j <= i {
		return ""
	}
	return s[i+1 : j]
}

// linkTarget reads what readlink printed, or the `ls -l` line the script falls back to
// where readlink is missing: "l... /sbin/init -> upstart" gives the target, a regular
// file gives its own path, an unreadable link (not root) gives "".
func linkTarget(s string) string {
	s = firstLine(s)
	if _, t, ok := strings.Cut(s, " -> "); ok {
		s = strings.TrimSpace(t) // kernels before 2.4 print "[0301]:16", device and inode
	}
	if strings.HasPrefix(s, "/") {
		return s
	}
	if f := strings.Fields(s); len(f) >= 8 && strings.HasPrefix(f[0], "-") && strings.HasPrefix(f[len(f)-1], "/") {
		return f[len(f)-1]
	}
	return ""
}
