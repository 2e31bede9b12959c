// Command haltfleet-idle is the idle init haltfleet leaves on a halted firewall. systemd's
// shutdown runs it as /shutdown VERB (PID 1, old root at /oldroot); runit's stage 3 execs it
// as "haltfleet-idle halt". For halt it detaches the disks, prints one census line to the
// console and idles forever; poweroff, reboot and kexec do the real thing. It is static and
// uses only package syscall so it stays small: it is embedded twice in haltfleet.
//
// updatemaxprocs=0: the runtime would otherwise re-read the cgroup CPU quota forever,
// and a parked init must open no file after its census.
//
//go:debug updatemaxprocs=0
package main

import "syscall"

// rebootCmds maps systemd's verbs to reboot(2) commands; halt is absent on purpose: a real
// halt stops the CPUs and with them the firewall.
var rebootCmds = map[string]int{
	"poweroff": syscall.LINUX_REBOOT_CMD_POWER_OFF,
	"reboot":   syscall.LINUX_REBOOT_CMD_RESTART,
	"kexec":    syscall.LINUX_REBOOT_CMD_KEXEC,
}

// machine is what the verbs do to the host; tests swap in recorders.
type machine struct {
	pid      int
	sync     func()
	reboot   func(cmd int) error
	park     func() // never returns in production
	selftest func(mode string) int
	warn     func(msg string) // to the console: as init there is nobody else
	complain func(msg string) // to stderr: someone ran us by hand
}

func main() {
	pid := syscall.Getpid()
	if pid == 1 {
		// Before anything can go wrong: PID 1 must never die.
		ignoreSignals()
		makePrivate()
		ensureProc()
	}
	args, err := readArgs()
	if err != nil && pid != 1 {
		say(2, "haltfleet-idle: "+failed("read arguments", err).Error())
		syscall.Exit(2)
	}
	syscall.Exit(dispatch(args, machine{
		pid:      pid,
		sync:     syscall.Sync,
		reboot:   syscall.Reboot,
		park:     func() { park(pid) },
		selftest: selftest,
		warn:     func(msg string) { tell("", "haltfleet-idle: "+msg) },
		complain: func(msg string) { say(2, msg) },
	}))
}

// dispatch runs the verb in args[1]. As PID 1 it never returns in production: anything it
// does not understand parks, because exiting would panic the kernel.
func dispatch(args []string, m machine) int {
	verb := ""
	if len(args) > 1 {
		verb = args[1]
	}
	switch verb {
	case selftestOrphan, selftestLinger:
		if m.pid != 1 { // the selftest's helpers; never legitimate as init
			return m.selftest(verb)
		}
	case "--selftest", selftestNS:
		return m.selftest(verb)
	case "halt":
		m.park()
		return 0
	}
	if cmd, ok := rebootCmds[verb]; ok {
		if m.pid != 1 {
			m.complain("haltfleet-idle: " + verb + ": not PID 1, refusing")
			return 2
		}
		m.sync()
		err := m.reboot(cmd)
		m.warn(verb + " failed: " + errText(err) + "; parking instead")
		m.park()
		return 0
	}
	if m.pid == 1 {
		m.warn("unknown verb " + token(verb) + "; parking")
		m.park()
		return 0
	}
	m.complain("usage: haltfleet-idle halt|poweroff|reboot|kexec|--selftest")
	return 2
}

func errText(err error) string {
	if err == nil {
		return "returned"
	}
	return err.Error()
}
