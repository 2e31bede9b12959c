package main

import (
	"syscall"
)

// mount is one line of /proc/self/mountinfo.
type mount struct {
	id, parent   int
	major, minor int
	point        string // unescaped
	fstype       string
	source       string
}

// disk reports whether the filesystem is backed by a block device (anything else is memory or
// kernel state): a real device number, or a /dev source for filesystems such as btrfs that
// report an anonymous one.
func (m mount) disk() bool { return m.major != 0 || hasPrefix(m.source, "/dev/") }

var errMountinfo = fail{stage: "malformed mountinfo line"}

// parseMountinfo parses proc(5) mountinfo: ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] - TYPE SOURCE SUPER.
func parseMountinfo(b []byte) ([]mount, error) {
	var out []mount
	for _, line := range split(string(b), '\n') {
		if line == "" {
			continue
		}
		f := split(line, ' ')
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 7 || sep < 0 || sep+2 >= len(f) {
			return nil, failed(line, errMountinfo)
		}
		var m mount
		var ok1, ok2, ok3, ok4 bool
		m.id, ok1 = atoi(f[0])
		m.parent, ok2 = atoi(f[1])
		colon := indexByte(f[2], ':')
		found := colon > 0
		maj, min := f[2], ""
		if found {
			maj, min = f[2][:colon], f[2][colon+1:]
		}
		m.major, ok3 = atoi(maj)
		m.minor, ok4 = atoi(min)
		if !ok1 || !ok2 || !ok3 || !ok4 || !found {
			return nil, failed(line, errMountinfo)
		}
		m.point = unescape(f[4])
		m.fstype = unescape(f[sep+1])
		m.source = unescape(f[sep+2])
		out = append(out, m)
	}
	return out, nil
}

// unescape undoes the kernel's octal escapes (\040 space, \011 tab, \012 newline, \134 backslash).
func unescape(s string) string {
	if indexByte(s, '\\') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b = append(b, (s[i+1]-'0')<<6|(s[i+2]-'0')<<3|(s[i+3]-'0'))
			i += 3
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// depth counts path components: "/" is 0, "/oldroot" 1, "/oldroot/proc" 2.
func depth(p string) int {
	p = trimSlashes(p)
	if p == "" {
		return 0
	}
	return countByte(p, '/') + 1
}

type item struct {
	point string
	depth int
	index int
}

// before orders deeper points first, then later mounts first.
func before(a, b item) bool {
	if a.depth != b.depth {
		return a.depth > b.depth
	}
	return a.index > b.index
}

// detachOrder lists the mount points to detach, deepest first; among equals the later mount
// first, so a stack of mounts on one point comes off top down.
func detachOrder(ms []mount, pick func(point string) bool) []string {
	var items []item
	for i, m := range ms {
		if pick(m.point) {
			items = append(items, item{m.point, depth(m.point), i})
		}
	}
	// Insertion sort: a handful of mounts, and package sort would cost weight.
	for i := 1; i < len(items); i++ {
		for j := i; j > 0 && before(items[j], items[j-1]); j-- {
			items[j], items[j-1] = items[j-1], items[j]
		}
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.point
	}
	return out
}

// exitrdPick selects what PID 1 detaches after systemd's pivot: everything but its own root,
// /proc (for the census) and /dev (for the console), so /oldroot and the moved /sys and /run go.
func exitrdPick(point string) bool {
	return point != "/" && point != "/proc" && point != "/dev"
}

// underPick selects root and everything below it (the test hook, and the selftest's fake /oldroot).
func underPick(root string) func(string) bool {
	root = trimRightSlashes(root)
	return func(p string) bool { return p == root || hasPrefix(p, root+"/") }
}

// detachPasses bounds the retries: each pass needs progress, so this is only a backstop.
const detachPasses = 8

// detach lazily unmounts every picked mount, deepest first, and returns how many detach calls
// worked and how many picked mounts are still there. Lazy (MNT_DETACH) because files held open
// by killed processes may still pin a filesystem; the kernel finishes once they close. A
// mount hidden under a later mount on a parent path cannot be reached by name (ENOENT); it
// usually goes with that parent, and another pass over a fresh mountinfo takes what is left.
func detach(pick func(string) bool) (done, left int, err error) {
	for pass := 0; pass < detachPasses; pass++ {
		ms, err := readMounts()
		if err != nil {
			return done, -1, err
		}
		order := detachOrder(ms, pick)
		if len(order) == 0 {
			return done, 0, nil
		}
		progress := 0
		var first error
		for _, p := range order {
			if e := syscall.Unmount(p, syscall.MNT_DETACH); e != nil {
				if first == nil {
					first = failed("detach "+p, e)
				}
				continue
			}
			progress++
		}
		done += progress
		if progress == 0 {
			return done, len(order), first
		}
	}
	ms, err := readMounts()
	if err != nil {
		return done, -1, err
	}
	return done, len(detachOrder(ms, pick)), nil
}

func readMounts() ([]mount, error) {
	b, err := readFile("/proc/self/mountinfo")
	if err != nil {
		return nil, failed("read mountinfo", err)
	}
	return parseMountinfo(b)
}

// makePrivate stops unmounts from propagating to other mount namespaces sharing peers with ours.
func makePrivate() error {
	if err := syscall.Mount("none", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return failed("make / private", err)
	}
	return nil
}

// ensureProc mounts a proc for our own PID namespace unless /proc already is one: the census
// and mountinfo need it, and a foreign /proc would count another namespace's processes.
func ensureProc() error {
	if self, err := readlink("/proc/self"); err == nil && self == itoa(syscall.Getpid()) {
		return nil
	}
	if err := syscall.Mkdir("/proc", 0o555); err != nil && err != syscall.EEXIST {
		return failed("mkdir /proc", err)
	}
	err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, "")
	if err != nil {
		return failed("mount /proc", err)
	}
	return nil
}

func readlink(p string) (string, error) {
	buf := make([]byte, 256)
	n, err := syscall.Readlink(p, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
