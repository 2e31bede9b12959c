package main

import (
	"syscall"
)

// census is what the parked host looks like, told once on the console: the last word anyone
// reads from the machine.
type census struct {
	pid      int
	others   int     // other processes, kernel threads excluded; -1 if /proc is unreadable
	mounts   []mount // nil with mountsOK false if mountinfo is unreadable
	mountsOK bool
	detached int // detach calls that worked (a lazy detach may take submounts with it)
	failed   int // picked mounts still mounted after the last pass; -1 if unknown
}

// maxDisks bounds the line on hosts with many mounts (the runit case keeps them all).
const maxDisks = 8

// line renders the census, e.g.
// "haltfleet-idle: parked pid=1 others=0 mounts=tmpfs,proc,devtmpfs disks=none detached=23 failed=0".
func (c census) line() string {
	return "haltfleet-idle: parked pid=" + itoa(c.pid) + " others=" + count(c.others) +
		" mounts=" + c.mountList() + " disks=" + c.diskList() +
		" detached=" + itoa(c.detached) + " failed=" + count(c.failed)
}

// count renders a number that is -1 when it could not be taken.
func count(n int) string {
	if n < 0 {
		return "unknown"
	}
	return itoa(n)
}

// mountList names filesystem types in order of first appearance, "*N" for repeats.
func (c census) mountList() string {
	if !c.mountsOK {
		return "unknown"
	}
	if len(c.mounts) == 0 {
		return "none"
	}
	var order []string
	count := map[string]int{}
	for _, m := range c.mounts {
		if count[m.fstype] == 0 {
			order = append(order, m.fstype)
		}
		count[m.fstype]++
	}
	parts := make([]string, len(order))
	for i, t := range order {
		parts[i] = token(t)
		if count[t] > 1 {
			parts[i] += "*" + itoa(count[t])
		}
	}
	return join(parts, ",")
}

// diskList names each block-backed mount as type@point: what still holds a disk.
func (c census) diskList() string {
	if !c.mountsOK {
		return "unknown"
	}
	var parts []string
	for _, m := range c.mounts {
		if m.disk() {
			parts = append(parts, token(m.fstype)+"@"+token(m.point))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	if len(parts) > maxDisks {
		parts = append(parts[:maxDisks], "+"+itoa(len(parts)-maxDisks)+"more")
	}
	return join(parts, ",")
}

// token keeps a name to one field of the line: octal-escape spaces, commas, controls, backslash.
func token(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == ',' || c == '\\' || c == 0x7f {
			b = append(b, '\\', '0'+c>>6, '0'+(c>>3)&7, '0'+c&7)
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

// takeCensus reads /proc: the only files the idle init reads, and only now.
func takeCensus(pid int) census {
	c := census{pid: pid, others: -1}
	if n, err := countOthers(pid); err == nil {
		c.others = n
	}
	if ms, err := readMounts(); err == nil {
		c.mounts, c.mountsOK = ms, true
	}
	return c
}

// pfKthread is PF_KTHREAD in /proc/PID/stat flags: kernel threads are not processes to worry about.
const pfKthread = 0x00200000

// countOthers counts user processes other than us and, when we are not init, PID 1.
func countOthers(self int) (int, error) {
	names, err := readDirNames("/proc")
	if err != nil {
		return 0, failed("list /proc", err)
	}
	n := 0
	for _, name := range names {
		pid, ok := atoi(name)
		if !ok || pid == self || pid == 1 {
			continue
		}
		stat, err := readFile("/proc/" + name + "/stat")
		if err != nil {
			continue // exited while we looked
		}
		if statFlags(stat)&pfKthread != 0 {
			continue
		}
		n++
	}
	return n, nil
}

// statFlags returns field 9 (flags) of /proc/PID/stat; comm may hold spaces, so count after ')'.
func statFlags(stat []byte) int {
	s := string(stat)
	i := lastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := fields(s[i+1:])
	if len(f) < 7 {
		return 0
	}
	n, _ := atoi(f[6])
	return n
}

// tell writes the census line to the console (or, for tests, to path), creating the console
// node if the exitrd has none.
func tell(path, line string) {
	if path != "" {
		fd, err := open(path, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC|syscall.O_CLOEXEC, 0o644)
		if err == nil {
			say(fd, line)
			syscall.Close(fd)
		}
		return
	}
	fd, err := open("/dev/console", syscall.O_WRONLY|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		syscall.Mkdir("/dev", 0o755)
		syscall.Mknod("/dev/console", syscall.S_IFCHR|0o600, 5<<8|1) // char 5:1
		fd, err = open("/dev/console", syscall.O_WRONLY|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	}
	if err != nil {
		say(2, line) // last resort: whatever stderr is
		return
	}
	say(fd, line)
	syscall.Close(fd)
}
