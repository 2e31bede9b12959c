package main

import "syscall"

// Test hooks: set only by tests. HALTFLEET_IDLE_ROOT makes PID 1 detach that subtree instead
// of everything but /, /proc and /dev; HALTFLEET_IDLE_CENSUS writes the census there instead
// of /dev/console.
const (
	envRoot   = "HALTFLEET_IDLE_ROOT"
	envCensus = "HALTFLEET_IDLE_CENSUS"
)

// park is the halt. As PID 1 (systemd's exitrd) it detaches every disk it can; as a child
// (runit's stage 3) it can only hold stage 3 open. Either way: one census line, then idle.
func park(pid int) {
	ignoreSignals()
	root, _ := syscall.Getenv(envRoot)
	censusPath, _ := syscall.Getenv(envCensus)
	done, left := 0, 0
	if pid == 1 {
		pick := exitrdPick
		if root != "" {
			pick = underPick(root)
		}
		done, left, _ = detach(pick)
	}
	reapReady()
	c := takeCensus(pid)
	c.detached, c.failed = done, left
	tell(censusPath, c.line())
	idle()
}

// reapReady collects children that already exited, without blocking.
func reapReady() (n int) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return n
		}
		n++
	}
}

// idle reaps orphans forever (as init every orphan is ours) and never returns: if PID 1
// returned, the kernel would panic and stop forwarding.
func idle() {
	for {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.ECHILD {
			sleep(10) // nothing to wait for; look again later for orphans
		} else if err != nil && err != syscall.EINTR {
			sleep(1)
		}
	}
}
