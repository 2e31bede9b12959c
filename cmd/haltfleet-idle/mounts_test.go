package main

import (
	"reflect"
	"testing"
)

// exitrdMountinfo is what PID 1 sees after systemd-shutdown's pivot into /run/initramfs
// (shape taken from a Debian 12 exitrd: API mounts bound in, the old tree under /oldroot).
const exitrdMountinfo = `60 59 0:45 / / rw,relatime - tmpfs tmpfs rw,size=4096k
61 60 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
62 60 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=986528k,mode=755
63 62 0:23 / /dev/pts rw,nosuid,noexec,relatime shared:3 - devpts devpts rw,gid=5,mode=620
64 60 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
65 64 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw
66 60 0:24 / /run rw,nosuid,nodev,noexec,relatime shared:5 - tmpfs tmpfs rw,mode=755
67 60 254:1 / /oldroot ro,relatime shared:1 - ext4 /dev/vda1 ro,errors=remount-ro
68 67 0:21 / /oldroot/proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
69 67 0:5 / /oldroot/dev rw,nosuid,relatime shared:2 - devtmpfs udev rw
70 67 254:2 / /oldroot/srv\040data rw,relatime shared:30 - ext4 /dev/vda2 rw
71 70 0:46 / /oldroot/srv\040data/cache rw master:31 - tmpfs tmpfs rw
72 67 0:47 / /oldroot/home rw,relatime - btrfs /dev/vdb rw
`

func TestParseMountinfo(t *testing.T) {
	ms, err := parseMountinfo([]byte(exitrdMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 13 {
		t.Fatalf("got %d mounts, want 13", len(ms))
	}
	want := mount{id: 70, parent: 67, major: 254, minor: 2, point: "/oldroot/srv data", fstype: "ext4", source: "/dev/vda2"}
	if ms[10] != want {
		t.Errorf("escaped line with optional field:\n got %+v\nwant %+v", ms[10], want)
	}
	if ms[0].point != "/" || ms[0].fstype != "tmpfs" || ms[0].disk() {
		t.Errorf("root: %+v disk=%v", ms[0], ms[0].disk())
	}
	// No optional fields at all, and btrfs with an anonymous device but a /dev source.
	if ms[12].fstype != "btrfs" || !ms[12].disk() {
		t.Errorf("btrfs line: %+v disk=%v, want a disk", ms[12], ms[12].disk())
	}
}

func TestParseMountinfoRejectsMalformed(t *testing.T) {
	for _, line := range []string{
		"60 59 0:45 / / rw,relatime tmpfs tmpfs rw", // no separator
		"60 59 0:45 / / rw,relatime - tmpfs",        // separator without source
		"x 59 0:45 / / rw - tmpfs tmpfs rw",         // id not a number
		"60 59 045 / / rw - tmpfs tmpfs rw",         // device without colon
		"60 59 0:45 /",                              // truncated
	} {
		if _, err := parseMountinfo([]byte(line + "\n")); err == nil {
			t.Errorf("accepted %q", line)
		}
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`:    "/a b",
		`/tab\011x`:  "/tab\tx",
		`/back\134s`: `/back\s`,
		`/nl\012`:    "/nl\n",
		`/plain`:     "/plain",
		`/short\04`:  `/short\04`, // not a full escape: kept
		`/bad\089`:   `/bad\089`,
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDetachOrderExitrd(t *testing.T) {
	ms, err := parseMountinfo([]byte(exitrdMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	got := detachOrder(ms, exitrdPick)
	want := []string{
		"/oldroot/srv data/cache",                                                         // depth 4
		"/sys/fs/cgroup",                                                                  // depth 3
		"/oldroot/home", "/oldroot/srv data", "/oldroot/dev", "/oldroot/proc", "/dev/pts", // depth 2, later first
		"/oldroot", "/run", "/sys", // depth 1; "/", "/proc" and "/dev" stay
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order:\n got %q\nwant %q", got, want)
	}
}

func TestDetachOrderStackedAndPrefix(t *testing.T) {
	ms := []mount{
		{point: "/t/root"}, {point: "/t/rootless"}, {point: "/t/root/a"},
		{point: "/t/root/a", source: "second"}, {point: "/t/root/a/b"}, {point: "/t"},
	}
	got := detachOrder(ms, underPick("/t/root/"))
	want := []string{"/t/root/a/b", "/t/root/a", "/t/root/a", "/t/root"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order:\n got %q\nwant %q", got, want)
	}
}

func TestDepth(t *testing.T) {
	for p, want := range map[string]int{"/": 0, "": 0, "/oldroot": 1, "/oldroot/": 1, "/a/b/c": 3} {
		if got := depth(p); got != want {
			t.Errorf("depth(%q) = %d, want %d", p, got, want)
		}
	}
}
