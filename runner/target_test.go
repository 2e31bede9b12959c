package runner

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTargetFromVars(t *testing.T) {
	got, err := TargetFromVars("fw1", map[string]any{
		"ansible_host": "10.0.0.1", "ansible_port": 2222, "ansible_user": "admin",
		"ansible_ssh_private_key_file": "~/.ssh/fw", "ansible_become": "yes", "ansible_become_user": "root",
		"ansible_ssh_common_args":    `-o ProxyJump=jump@bastion:2200 -o StrictHostKeyChecking=accept-new -o "UserKnownHostsFile=/tmp/kh" -o ConnectTimeout=5`,
		"ansible_ssh_extra_args":     "-o User=ignored -o Port=1 -o ServerAliveInterval=30",
		"ansible_python_interpreter": "/usr/bin/python3", "nft_ruleset": "rules.nft",
	})
	want := Target{Name: "fw1", Host: "10.0.0.1", Port: 2222, User: "admin", IdentityFiles: []string{"~/.ssh/fw"},
		Become: true, BecomeUser: "root", ProxyJump: "jump@bastion:2200", HostKeys: HostKeyAcceptNew,
		UserKnownHostsFiles: []string{"/tmp/kh"}, ConnectTimeout: 5 * time.Second, ServerAliveInterval: 30 * time.Second}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v %v\nwant %+v", got, err, want)
	}
	got, err = TargetFromVars("fw2", map[string]any{"ansible_ssh_common_args": "-J a,b -oPort=2200 -o StrictHostKeyChecking=yes"})
	if err != nil || got.ProxyJump != "a,b" || got.Port != 2200 || got.Host != "fw2" || got.HostKeys != HostKeyStrict {
		t.Fatalf("got %+v %v", got, err)
	}
}

func TestTargetFromVarsErrors(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]any
		want string
	}{
		{map[string]any{"ansible_port": "ssh"}, "fw1: ansible_port"},
		{map[string]any{"ansible_port": 70000}, "ansible_port: port 70000 out of range"},
		{map[string]any{"ansible_user": []string{"a"}}, "fw1: ansible_user: want a string"},
		{map[string]any{"ansible_become": "maybe"}, "fw1: ansible_become"},
		{map[string]any{"ansible_ssh_common_args": "-o ProxyCommand=nc"}, `ansible_ssh_common_args: unsupported ssh option "proxycommand"`},
		{map[string]any{"ansible_ssh_extra_args": "-A"}, `ansible_ssh_extra_args: unsupported ssh argument "-A"`},
		{map[string]any{"ansible_ssh_extra_args": "-o 'Port=1"}, "unterminated quote"},
	} {
		_, err := TargetFromVars("fw1", tc.vars)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: want %q, got %v", tc.vars, tc.want, err)
		}
	}
}

func TestTargetFromVarsRefusesHostileAddresses(t *testing.T) {
	for _, ok := range []string{"10.0.0.1", "fw-01", "fw_01.example.com", "2001:db8::1", "fe80::1%eth0", "FW1.EXAMPLE.COM."} {
		if _, err := TargetFromVars("h", map[string]any{"ansible_host": ok}); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"a b", "x;rm -rf /", "evil\x1b[31m", "-oProxyCommand=x", "a..b", "host\n", strings.Repeat("a", 64) + ".com", "$(id)"} {
		_, err := TargetFromVars("h", map[string]any{"ansible_host": bad})
		if err == nil {
			t.Errorf("%q accepted", bad)
			continue
		}
		if strings.ContainsAny(err.Error(), "\x1b\n") {
			t.Errorf("error carries control characters raw: %q", err.Error())
		}
	}
	if _, err := TargetFromVars("web server", nil); err == nil || !strings.Contains(err.Error(), "set ansible_host") {
		t.Errorf("a name that is no address, without ansible_host: %v", err)
	}
}
