package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/fleetlab"
)

func TestCountSessions(t *testing.T) {
	in := `h001: $ sh -c 'facts'
h002: $ sh -c 'facts'
h001: $ sftp put /etc/nftables.conf
h001: $ sysctl -q -w 'net.ipv4.ip_forward=1'
h001: $ sftp put /etc/sysctl.d/99-haltfleet.conf
21:19:28 h001     apply:  changed set net.ipv4.ip_forward = 1 (now 0)
h002: sftp get /etc/nftables.conf
`
	got := countSessions(strings.NewReader(in))
	// h001: two commands plus one SFTP channel for both puts; h002: one command (the
	// malformed sftp line without "$ " is not haltfleet's -v format).
	if got["h001"] != 3 || got["h002"] != 1 || len(got) != 2 {
		t.Errorf("countSessions = %v, want h001:3 h002:1", got)
	}
}

func TestParseConns(t *testing.T) {
	js := `{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"set": {"family": "inet", "name": "conns",
"elem": [{"elem": {"val": "10.201.176.2", "counter": {"packets": 2, "bytes": 120}}},
{"elem": {"val": "10.201.176.3", "counter": {"packets": 1, "bytes": 60}}}]}}]}`
	got, err := parseConns([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if got["10.201.176.2"] != 2 || got["10.201.176.3"] != 1 || len(got) != 2 {
		t.Errorf("parseConns = %v", got)
	}
	if got, err := parseConns([]byte(`{"nftables": [{"set": {"name": "conns"}}]}`)); err != nil || len(got) != 0 {
		t.Errorf("empty set: %v %v", got, err)
	}
	if _, err := parseConns([]byte(`not json`)); err == nil {
		t.Error("parseConns accepted garbage")
	}
}

func TestAnsibleRecapAndSessions(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "play.out")
	recap := `PLAY RECAP *********************************************************************
h001                       : ok=9    changed=4    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
h002                       : ok=7    changed=0    unreachable=0    failed=0    skipped=2    rescued=0    ignored=0
h003                       : ok=2    changed=0    unreachable=0    failed=1    skipped=0    rescued=0    ignored=0
h004                       : ok=0    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0
`
	if err := os.WriteFile(out, []byte(recap), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := ansibleRecap(out), "recap: ok=1 changed=1 failed=1 unreachable=1"; got != want {
		t.Errorf("ansibleRecap = %q, want %q", got, want)
	}
	log := filepath.Join(dir, "sessions.log")
	lines := `-F none -C -o ControlMaster=auto -o User="root" 10.201.176.2 /bin/sh -c 'echo ~root && sleep 0'
-F none -C -o ControlMaster=auto -o User="root" 10.201.176.2 /bin/sh -c '/usr/bin/python3 && sleep 0'
-b - -C -o ControlMaster=auto [10.201.176.3]
-F none 10.9.9.9 true
`
	if err := os.WriteFile(log, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	hosts := []fleetlab.Host{{Name: "h001", Addr: "10.201.176.2"}, {Name: "h002", Addr: "10.201.176.3"}}
	got, err := ansibleSessions(log, hosts)
	if err != nil {
		t.Fatal(err)
	}
	if got["10.201.176.2"] != 2 || got["10.201.176.3"] != 1 || len(got) != 2 {
		t.Errorf("ansibleSessions = %v", got)
	}
}

func TestHaltfleetNote(t *testing.T) {
	for _, c := range []struct{ out, want string }{
		{"21:19:28 h001 result: changed\nrecap: ok=0 changed=3 halted=0 failed=0 skipped=0 unreachable=0\n21:19:29 == recap: x\n",
			"recap: ok=0 changed=3 halted=0 failed=0 skipped=0 unreachable=0"},
		{"== h001\n  host h001\n== h002\n  host h002\n", "2 hosts"},
		{"== h001: in sync (live)\naudit: 3 hosts, 3 in sync, 0 drifted, 0 errors\n", "audit: 3 hosts, 3 in sync, 0 drifted, 0 errors"},
	} {
		if got := hfNote(strings.NewReader(c.out)); got != c.want {
			t.Errorf("hfNote(%q) = %q, want %q", c.out, got, c.want)
		}
	}
}

func TestFloorRatiosAndTable(t *testing.T) {
	sr := SizeRun{N: 2, Hosts: 2, Forks: 2, Results: []Result{
		{Name: FloorGo, Wall: 2 * time.Second, Sessions: 1, SessionsMax: 1, HasSessions: true, Conns: 1, ConnsMax: 1},
		{Name: FloorOpenSSH, Wall: time.Second, Sessions: 1, SessionsMax: 1, HasSessions: true, Conns: 1, ConnsMax: 1},
		{Name: HFUp, Wall: 3 * time.Second, RSSKiB: 300 * 1024, Sessions: 11.5, SessionsMax: 12, HasSessions: true, Conns: 2, ConnsMax: 2},
		{Name: HFFacts, Wall: 1400 * time.Millisecond, Err: "boom\nmore"},
		{Name: AnsUp, Wall: 60 * time.Second},
		{Name: HFAudit, Wall: 1500 * time.Millisecond},
	}}
	if got := sr.Floor(); got != time.Second {
		t.Errorf("Floor = %v, want the faster floor, 1s", got)
	}
	up, _ := sr.Result(HFUp)
	if got := sr.VsAnsible(up); got != 0.05 {
		t.Errorf("VsAnsible(up) = %v, want 0.05", got)
	}
	facts, _ := sr.Result(HFFacts)
	if got := sr.VsAnsible(facts); got != 0 {
		t.Errorf("VsAnsible of a failed row = %v, want 0", got)
	}
	var b bytes.Buffer
	PrintTable(&b, sr)
	for _, want := range []string{"hf-up", "3.00", "0.050 (20.0× faster)", "300.0 MiB", "11.5 (max 12)", "FAILED: boom"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	PrintSummary(&b, &Report{Forks: 2, Sizes: []SizeRun{sr}})
	for _, want := range []string{"up ≥ 10× faster than Ansible   20.0×        MET", "audit ≤ 1.5× floor             1.50×        MET",
		"peak RSS < 200 MiB             300.0 MiB    NOT MET"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "facts") {
		t.Errorf("summary judges a failed facts row:\n%s", b.String())
	}
}

func TestConnRules(t *testing.T) {
	// The rules are checked by nft itself in TestInterruptTakesFleetDown; here only
	// that the prefix and block land where nft expects them.
	r := connRules("hfs", "10.201.176.0/20")
	if !strings.Contains(r, "table inet hfbench_hfs {") || !strings.Contains(r, "ip daddr 10.201.176.0/20 tcp dport 22") {
		t.Errorf("connRules:\n%s", r)
	}
	if got := fleetCIDR(11); got != "10.201.176.0/20" {
		t.Errorf("fleetCIDR(11) = %s", got)
	}
}
