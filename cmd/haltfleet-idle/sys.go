package main

import (
	"syscall"
	"unsafe"
)

// Small replacements for os, fmt and strconv: each of those adds weight to a binary that
// is copied to every host and carried twice inside haltfleet.

// say writes one line to fd, ignoring errors: there is nobody to tell if the console fails.
func say(fd int, line string) {
	b := []byte(line + "\n")
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return
		}
		b = b[n:]
	}
}

// readFile reads a whole (small, /proc) file.
func readFile(path string) ([]byte, error) {
	fd, err := open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	var out []byte
	buf := make([]byte, 8192)
	for {
		n, err := syscall.Read(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
	}
}

func open(path string, mode int, perm uint32) (int, error) {
	for {
		fd, err := syscall.Open(path, mode, perm)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

// readDirNames lists a directory (used for /proc only).
func readDirNames(path string) ([]string, error) {
	fd, err := open(path, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	var names []string
	buf := make([]byte, 8192)
	for {
		n, err := syscall.ReadDirent(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = syscall.ParseDirent(buf[:n], -1, names)
	}
}

// readArgs reads argv from /proc/self/cmdline: os.Args would pull in package os (~170 KB).
func readArgs() ([]string, error) {
	b, err := readFile("/proc/self/cmdline")
	if err != nil {
		return nil, err
	}
	var args []string
	start := 0
	for i, c := range b {
		if c == 0 {
			args = append(args, string(b[start:i]))
			start = i + 1
		}
	}
	if start < len(b) {
		args = append(args, string(b[start:]))
	}
	return args, nil
}

// kernelSigaction is struct sigaction as the rt_sigaction syscall takes it (same on amd64 and arm64).
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// parkedSignals are those whose Go default would end the process: fatal for PID 1 (kernel panic)
// and for the runit child (stage 3 would finish and runit would call reboot(2)).
var parkedSignals = []syscall.Signal{
	syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGABRT, syscall.SIGUSR1,
	syscall.SIGUSR2, syscall.SIGPIPE, syscall.SIGALRM, syscall.SIGTERM, syscall.SIGSTKFLT,
	syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGXCPU, syscall.SIGXFSZ,
	syscall.SIGVTALRM, syscall.SIGPROF, syscall.SIGIO, syscall.SIGPWR,
}

// ignoreSignals sets SIG_IGN in the kernel, below the Go runtime: os/signal.Ignore would do the
// same but needs package os. Dispositions are process-wide, so every runtime thread is covered.
func ignoreSignals() error {
	var first error
	for _, s := range parkedSignals {
		sa := kernelSigaction{handler: 1} // SIG_IGN
		_, _, e := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(s),
			uintptr(unsafe.Pointer(&sa)), 0, 8, 0, 0)
		if e != 0 && first == nil {
			first = e
		}
	}
	return first
}

// sleep pauses without the runtime's timers, which would let a bare main look deadlocked.
func sleep(sec int64) {
	ts := syscall.Timespec{Sec: sec}
	syscall.Nanosleep(&ts, nil)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b [24]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// atoi parses a non-negative decimal; ok is false for anything else.
func atoi(s string) (int, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// fail is an error with the stage it happened in, without package fmt.
type fail struct {
	stage string
	err   error
}

func (f fail) Error() string {
	if f.err == nil {
		return f.stage
	}
	return f.stage + ": " + f.err.Error()
}

func (f fail) Unwrap() error { return f.err }

func failed(stage string, err error) error { return fail{stage, err} }
