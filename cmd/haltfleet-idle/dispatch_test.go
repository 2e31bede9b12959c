package main

import (
	"errors"
	"reflect"
	"syscall"
	"testing"
)

// recorder is a machine that only writes down what the verb asked for: no test reboots the host.
type recorder struct {
	calls     []string
	rebootTo  []int
	rebootErr error
}

func (r *recorder) machine(pid int) machine {
	return machine{
		pid:  pid,
		sync: func() { r.calls = append(r.calls, "sync") },
		reboot: func(cmd int) error {
			r.calls = append(r.calls, "reboot")
			r.rebootTo = append(r.rebootTo, cmd)
			return r.rebootErr
		},
		park:     func() { r.calls = append(r.calls, "park") },
		selftest: func(mode string) int { r.calls = append(r.calls, "selftest"+mode); return 7 },
		warn:     func(string) { r.calls = append(r.calls, "warn") },
		complain: func(string) { r.calls = append(r.calls, "complain") },
	}
}

func TestDispatch(t *testing.T) {
	broken := errors.New("EPERM")
	for _, tc := range []struct {
		name      string
		args      []string
		pid       int
		rebootErr error
		code      int
		calls     []string
		rebootTo  []int
	}{
		{"halt as init parks, never reboots", []string{"/shutdown", "halt"}, 1, nil, 0, []string{"park"}, nil},
		{"halt as runit child parks", []string{"idle", "halt"}, 812, nil, 0, []string{"park"}, nil},
		{"poweroff syncs then powers off", []string{"/shutdown", "poweroff"}, 1, nil, 0,
			[]string{"sync", "reboot", "warn", "park"}, []int{syscall.LINUX_REBOOT_CMD_POWER_OFF}},
		{"reboot restarts", []string{"/shutdown", "reboot", "--log-level=info"}, 1, nil, 0,
			[]string{"sync", "reboot", "warn", "park"}, []int{syscall.LINUX_REBOOT_CMD_RESTART}},
		{"kexec kexecs", []string{"/shutdown", "kexec"}, 1, nil, 0,
			[]string{"sync", "reboot", "warn", "park"}, []int{syscall.LINUX_REBOOT_CMD_KEXEC}},
		{"failed reboot parks rather than exit", []string{"/shutdown", "reboot"}, 1, broken, 0,
			[]string{"sync", "reboot", "warn", "park"}, []int{syscall.LINUX_REBOOT_CMD_RESTART}},
		{"poweroff refused when not init", []string{"idle", "poweroff"}, 812, nil, 2, []string{"complain"}, nil},
		{"unknown verb as init parks", []string{"/shutdown", "exit"}, 1, nil, 0, []string{"warn", "park"}, nil},
		{"no verb as init parks", []string{"/shutdown"}, 1, nil, 0, []string{"warn", "park"}, nil},
		{"unknown verb otherwise is usage", []string{"idle", "sleep"}, 812, nil, 2, []string{"complain"}, nil},
		{"selftest", []string{"idle", "--selftest"}, 812, nil, 7, []string{"selftest--selftest"}, nil},
		{"selftest helper as init parks", []string{"/shutdown", selftestLinger}, 1, nil, 0, []string{"warn", "park"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{rebootErr: tc.rebootErr}
			code := dispatch(tc.args, r.machine(tc.pid))
			if code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			if !reflect.DeepEqual(r.calls, tc.calls) {
				t.Errorf("calls %q, want %q", r.calls, tc.calls)
			}
			if !reflect.DeepEqual(r.rebootTo, tc.rebootTo) {
				t.Errorf("reboot commands %#x, want %#x", r.rebootTo, tc.rebootTo)
			}
		})
	}
}
