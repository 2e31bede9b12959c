package main

import (
	"syscall"
)

// Hidden modes the selftest runs itself in.
const (
	selftestNS     = "--selftest-ns"     // the checks, as PID 1 of new PID and mount namespaces
	selftestOrphan = "--selftest-orphan" // leaves a child behind for init to reap
	selftestLinger = "--selftest-linger" // that child
)

// scratchDirs are tried in order as the place for the selftest's tmpfs; the mount lives only
// in the selftest's private mount namespace, so nothing touches the host.
var scratchDirs = []string{"/tmp", "/run", "/mnt", "/root", "/dev"}

// selftest proves on a live host that the halt path works there: it reruns itself as PID 1 of
// fresh PID and mount namespaces, builds a fake /oldroot, detaches it, counts processes,
// reaps an orphan and prints "selftest ok: <census>". Exit status 0 means all of that held.
func selftest(mode string) int {
	switch mode {
	case selftestLinger:
		sleepMillis(50)
		return 0
	case selftestOrphan:
		if _, err := spawn(selftestLinger, 0, false); err != nil {
			return 1
		}
		return 0
	case selftestNS:
		line, err := selftestInside()
		if err != nil {
			say(2, "haltfleet-idle: selftest failed: "+err.Error())
			return 1
		}
		say(1, "selftest ok: "+line)
		return 0
	}
	pid, err := spawn(selftestNS, syscall.CLONE_NEWPID|syscall.CLONE_NEWNS, true)
	if err != nil {
		say(2, "haltfleet-idle: selftest failed: "+failed("clone PID and mount namespaces", err).Error())
		return 1
	}
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	switch {
	case err != nil:
		say(2, "haltfleet-idle: selftest failed: "+failed("wait", err).Error())
		return 1
	case ws.Signaled():
		say(2, "haltfleet-idle: selftest failed: killed by signal "+itoa(int(ws.Signal())))
		return 1
	}
	return ws.ExitStatus()
}

// spawn runs this binary again in mode; die ties the child's life to ours.
func spawn(mode string, cloneflags uintptr, die bool) (int, error) {
	sys := &syscall.SysProcAttr{Cloneflags: cloneflags}
	if die {
		sys.Pdeathsig = syscall.SIGKILL
	}
	return syscall.ForkExec("/proc/self/exe", []string{"haltfleet-idle", mode}, &syscall.ProcAttr{
		Files: []uintptr{0, 1, 2},
		Sys:   sys,
	})
}

func sleepMillis(ms int64) {
	ts := syscall.NsecToTimespec(ms * 1e6)
	syscall.Nanosleep(&ts, nil)
}

var errSelftest = fail{stage: "check failed"}

// selftestInside runs the halt path's pieces on a fake /oldroot and returns the census line.
func selftestInside() (string, error) {
	if syscall.Getpid() != 1 {
		return "", failed("not PID 1 of a new PID namespace", errSelftest)
	}
	// main already did these for PID 1; repeated here so a failure has a reason.
	if err := makePrivate(); err != nil {
		return "", err
	}
	if err := ensureProc(); err != nil {
		return "", err
	}
	if err := ignoreSignals(); err != nil {
		return "", failed("ignore signals", err)
	}
	if err := checkIgnored(); err != nil {
		return "", err
	}
	root, err := fakeOldroot()
	if err != nil {
		return "", err
	}
	before, disks, err := mountsUnder(root)
	if err != nil {
		return "", err
	}
	if len(before) < 5 {
		return "", failed("fake /oldroot has "+itoa(len(before))+" mounts, want 5", errSelftest)
	}
	done, remaining, err := detach(underPick(root))
	if err != nil {
		return "", err
	}
	stuck, _, err := mountsUnder(root)
	if err != nil {
		return "", err
	}
	if len(stuck) > 0 || remaining != 0 {
		return "", failed("still mounted after detach: "+itoa(remaining)+" "+join(stuck, ","), errSelftest)
	}
	others, err := countOthers(1)
	if err != nil {
		return "", err
	}
	if others != 0 {
		return "", failed(itoa(others)+" other processes in a fresh PID namespace", errSelftest)
	}
	reaped, err := checkReap()
	if err != nil {
		return "", err
	}
	c := takeCensus(1)
	c.detached, c.failed = done, remaining
	return c.line() + " reaped=" + itoa(reaped) + " disks-detached=" + itoa(disks), nil
}

// checkIgnored reads back SigIgn from /proc/self/status: the kernel's word, not ours.
func checkIgnored() error {
	b, err := readFile("/proc/self/status")
	if err != nil {
		return failed("read /proc/self/status", err)
	}
	mask, ok := statusMask(b, "SigIgn:")
	if !ok {
		return failed("no SigIgn in /proc/self/status", errSelftest)
	}
	for _, s := range parkedSignals {
		if mask&(1<<(uint(s)-1)) == 0 {
			return failed("signal "+itoa(int(s))+" not ignored", errSelftest)
		}
	}
	return nil
}

// statusMask parses a hex signal mask line such as "SigIgn:\t0000000000001000".
func statusMask(status []byte, key string) (uint64, bool) {
	s := string(status)
	for len(s) > 0 {
		line := s
		if i := indexByte(s, '\n'); i >= 0 {
			line, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		if len(line) < len(key) || line[:len(key)] != key {
			continue
		}
		var v uint64
		n := 0
		for _, c := range []byte(line[len(key):]) {
			switch {
			case c >= '0' && c <= '9':
				v = v<<4 | uint64(c-'0')
			case c >= 'a' && c <= 'f':
				v = v<<4 | uint64(c-'a'+10)
			case c == '\t' || c == ' ':
				continue
			default:
				return 0, false
			}
			n++
		}
		return v, n > 0
	}
	return 0, false
}

// fakeOldroot arranges what systemd leaves at /oldroot: a root with API mounts and, if the
// host's / is on a disk, a disk (a bind of /).
func fakeOldroot() (string, error) {
	base := ""
	for _, d := range scratchDirs {
		var st syscall.Stat_t
		if syscall.Stat(d, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
			base = d
			break
		}
	}
	if base == "" {
		return "", failed("no directory for a scratch tmpfs", errSelftest)
	}
	if err := syscall.Mount("haltfleet-selftest", base, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=1m,mode=700"); err != nil {
		return "", failed("mount tmpfs on "+base, err)
	}
	root := base + "/oldroot"
	steps := []struct{ source, point, fstype string }{
		{"oldroot", root, "tmpfs"},
		{"run", root + "/run", "tmpfs"},
		{"lock", root + "/run/lock", "tmpfs"},
		{"proc", root + "/proc", "proc"},
		{"/", root + "/disk", ""}, // bind
	}
	for _, s := range steps {
		if err := syscall.Mkdir(s.point, 0o700); err != nil && err != syscall.EEXIST {
			return "", failed("mkdir "+s.point, err)
		}
		var flags uintptr = syscall.MS_NOSUID | syscall.MS_NODEV
		if s.fstype == "" {
			flags = syscall.MS_BIND
		}
		if err := syscall.Mount(s.source, s.point, s.fstype, flags, ""); err != nil {
			return "", failed("mount "+s.point, err)
		}
	}
	return root, nil
}

// mountsUnder lists mount points at or below root and how many of them are disks.
func mountsUnder(root string) (points []string, disks int, err error) {
	ms, err := readMounts()
	if err != nil {
		return nil, 0, err
	}
	pick := underPick(root)
	for _, m := range ms {
		if pick(m.point) {
			points = append(points, m.point)
			if m.disk() {
				disks++
			}
		}
	}
	return points, disks, nil
}

// checkReap starts a child that leaves a grandchild behind and exits: as init we must reap
// both, the grandchild only because the kernel reparented it to us.
func checkReap() (int, error) {
	child, err := spawn(selftestOrphan, 0, true)
	if err != nil {
		return 0, failed("spawn", err)
	}
	reaped := 0
	sawChild := false
	for reaped < 2 {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return reaped, failed("reap (orphan not reparented to init?)", err)
		}
		if !ws.Exited() || ws.ExitStatus() != 0 {
			return reaped, failed("child "+itoa(pid)+" did not exit cleanly", errSelftest)
		}
		if pid == child {
			sawChild = true
		}
		reaped++
	}
	if !sawChild {
		return reaped, failed("reaped two processes but not our child", errSelftest)
	}
	return reaped, nil
}
