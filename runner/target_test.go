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
