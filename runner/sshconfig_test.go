package runner

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const sampleConfig = `# fleet
Host fw-*  !fw-legacy
    HostName %h.lab.example
    User admin
    IdentityFile ~/.ssh/fleet_%r
Host fw-1
    Port 2201
    User ignored-first-wins
Match host fw-1.lab.example user admin
    ConnectTimeout 3
    ProxyJump bastion
Match originalhost fw-legacy
    HostName 10.0.0.9
    Port=2222
    StrictHostKeyChecking accept-new
    UserKnownHostsFile "%d/kh legacy" /tmp/kh2
Host bastion
    HostName 192.0.2.1
    User jump
    IdentitiesOnly yes
    ServerAliveInterval 15
Match final host *.lab.example
    IdentityFile %d/final_%h
Host *
    IdentityFile ~/.ssh/id_default
    Port 22
`

func TestSSHConfigResolve(t *testing.T) {
	c, err := ParseSSHConfig([]byte(sampleConfig), "/home/u")
	if err != nil {
		t.Fatal(err)
	}
	c.localUser = "u"
	for _, tc := range []struct {
		in   Target
		want Target
	}{
		{Target{Name: "fw-1"}, Target{Name: "fw-1", Host: "fw-1.lab.example", Port: 2201, User: "admin",
			IdentityFiles: []string{"/home/u/.ssh/fleet_admin", "/home/u/.ssh/id_default", "/home/u/final_fw-1.lab.example"},
			ProxyJump:     "bastion", ConnectTimeout: 3 * time.Second}},
		// inventory values win over the config (they are ssh command-line options)
		{Target{Name: "fw-1", User: "ops", Port: 22000, IdentityFiles: []string{"/k"}}, Target{Name: "fw-1", Host: "fw-1.lab.example",
			Port: 22000, User: "ops", IdentityFiles: []string{"/k", "/home/u/.ssh/fleet_ops", "/home/u/.ssh/id_default", "/home/u/final_fw-1.lab.example"}}},
		{Target{Name: "fw-legacy"}, Target{Name: "fw-legacy", Host: "10.0.0.9", Port: 2222, User: "u", HostKeys: HostKeyAcceptNew,
			UserKnownHostsFiles: []string{"/home/u/kh legacy", "/tmp/kh2"}, IdentityFiles: []string{"/home/u/.ssh/id_default"}}},
		{Target{Name: "bastion"}, Target{Name: "bastion", Host: "192.0.2.1", Port: 22, User: "jump", IdentitiesOnly: true,
			ServerAliveInterval: 15 * time.Second, IdentityFiles: []string{"/home/u/.ssh/id_default"}}},
		{Target{Name: "inv", Host: "bastion"}, Target{Name: "inv", Host: "192.0.2.1", Port: 22, User: "jump", IdentitiesOnly: true,
			ServerAliveInterval: 15 * time.Second, IdentityFiles: []string{"/home/u/.ssh/id_default"}}},
	} {
		got, err := c.Resolve(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in.Name, err)
		}
		got.resolved, got.identitiesOnlySet = false, false
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.in.Name, got, tc.want)
		}
	}
}

func TestSSHConfigInclude(t *testing.T) {
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".ssh", "conf.d"), 0o700)
	os.WriteFile(filepath.Join(home, ".ssh", "conf.d", "a.conf"), []byte("Host db\n  Port 2022\nHost *\n  User inc\n"), 0o600)
	c, err := ParseSSHConfig([]byte("Host db web\n  Include conf.d/*.conf\nHost other\n  Include /nonexistent/*.conf\n"), home)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Resolve(Target{Name: "db"})
	if err != nil || got.Port != 2022 || got.User != "inc" {
		t.Fatalf("db: %+v %v", got, err)
	}
	got, _ = c.Resolve(Target{Name: "web"})
	if got.Port != 22 || got.User != "inc" {
		t.Fatalf("web: %+v", got)
	}
	got, _ = c.Resolve(Target{Name: "x"}) // Include inside a non-matching block is skipped
	if got.User == "inc" {
		t.Fatalf("x: %+v", got)
	}
}

func TestSSHConfigErrors(t *testing.T) {
	for cfg, want := range map[string]string{
		"Match exec \"true\"\n  Port 1\n":                         "Match exec is not supported",
		"Host h\n  Port nope\n":                                   "config:2: Port",
		"Host h\n  ProxyCommand nc %h %p\n":                       "ProxyCommand is not supported",
		"Host h\n  StrictHostKeyChecking maybe\n":                 "StrictHostKeyChecking",
		"Host h\n  HostName \"unterminated\n":                     "unterminated quote",
		"Match host x\n  Port 1\nMatch localnetwork 10.0.0.0/8\n": "Match localnetwork is not supported",
	} {
		c, err := ParseSSHConfig([]byte(cfg), "/h")
		if err == nil {
			_, err = c.Resolve(Target{Name: "h"})
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: want error containing %q, got %v", cfg, want, err)
		}
	}
	// exec after a failed criterion is not evaluated, as in OpenSSH
	c, _ := ParseSSHConfig([]byte("Match host nomatch exec \"false\"\n  Port 1\n"), "/h")
	if _, err := c.Resolve(Target{Name: "h"}); err != nil {
		t.Errorf("short-circuit: %v", err)
	}
}

func FuzzSSHConfig(f *testing.F) {
	f.Add(sampleConfig)
	f.Add("Host a\n\tHostName=b\nMatch !host a,b user x localuser y all\n")
	f.Add("Host=*\nPort \"22\"\nIdentityFile %d/%u/%h/%r/%%\n")
	f.Add("Match final\nProxyJump a,b\n")
	f.Fuzz(func(t *testing.T, cfg string) {
		c, err := ParseSSHConfig([]byte(cfg), "/nonexistent-home")
		if err != nil {
			return
		}
		c.glob = func(string) ([]string, error) { return nil, nil } // no file system access
		got, err := c.Resolve(Target{Name: "fw-1"})
		if err != nil {
			return
		}
		if got.Port < 1 || got.Port > 65535 || got.Host == "" || got.User == "" {
			t.Fatalf("resolved to an unusable target: %+v", got)
		}
	})
}
