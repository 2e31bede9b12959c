package main

import (
	"strings"
	"testing"
)

func TestCensusLineAfterExitrdDetach(t *testing.T) {
	c := census{pid: 1, others: 0, mountsOK: true, detached: 10, mounts: []mount{
		{point: "/", fstype: "tmpfs", source: "tmpfs", major: 0},
		{point: "/proc", fstype: "proc", source: "proc"},
		{point: "/dev", fstype: "devtmpfs", source: "udev"},
	}}
	want := "haltfleet-idle: parked pid=1 others=0 mounts=tmpfs,proc,devtmpfs disks=none detached=10 failed=0"
	if got := c.line(); got != want {
		t.Errorf("line:\n got %q\nwant %q", got, want)
	}
}

func TestCensusLineRunitChild(t *testing.T) {
	c := census{pid: 812, others: 3, mountsOK: true, failed: 1, mounts: []mount{
		{point: "/", fstype: "ext4", source: "/dev/vda1", major: 254, minor: 1},
		{point: "/proc", fstype: "proc", source: "proc"},
		{point: "/run", fstype: "tmpfs", source: "tmpfs"},
		{point: "/dev/shm", fstype: "tmpfs", source: "tmpfs"},
		{point: "/srv/my data", fstype: "btrfs", source: "/dev/vdb"},
	}}
	want := `haltfleet-idle: parked pid=812 others=3 mounts=ext4,proc,tmpfs*2,btrfs disks=ext4@/,btrfs@/srv/my\040data detached=0 failed=1`
	if got := c.line(); got != want {
		t.Errorf("line:\n got %q\nwant %q", got, want)
	}
}

func TestCensusLineUnknownsAndManyDisks(t *testing.T) {
	c := census{pid: 1, others: -1}
	want := "haltfleet-idle: parked pid=1 others=unknown mounts=unknown disks=unknown detached=0 failed=0"
	if got := c.line(); got != want {
		t.Errorf("line:\n got %q\nwant %q", got, want)
	}
	c = census{pid: 1, mountsOK: true}
	for i := 0; i < maxDisks+3; i++ {
		c.mounts = append(c.mounts, mount{point: "/d" + itoa(i), fstype: "xfs", major: 8, minor: i})
	}
	got := c.line()
	if !strings.Contains(got, "mounts=xfs*11 ") || !strings.Contains(got, ",xfs@/d7,+3more ") {
		t.Errorf("many disks not bounded: %q", got)
	}
	if n := len(strings.Fields(got)); n != 8 {
		t.Errorf("line has %d fields, want 8: %q", n, got)
	}
}

func TestToken(t *testing.T) {
	for in, want := range map[string]string{
		"ext4":   "ext4",
		"a b":    `a\040b`,
		"a,b":    `a\054b`,
		"a\\b":   `a\134b`,
		"x\ny\t": `x\012y\011`,
	} {
		if got := token(in); got != want {
			t.Errorf("token(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStatFlags(t *testing.T) {
	// comm may contain spaces and parentheses; flags is the 9th field overall.
	kthread := "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0"
	user := "812 (my (odd) name) S 1 812 812 0 -1 4194560 130 0 0 0 0 0 0 0 20 0 1 0 90"
	if statFlags([]byte(kthread))&pfKthread == 0 {
		t.Error("kthreadd not seen as a kernel thread")
	}
	if statFlags([]byte(user))&pfKthread != 0 {
		t.Error("user process seen as a kernel thread")
	}
	if statFlags([]byte("garbage")) != 0 {
		t.Error("garbage parsed")
	}
}

func TestStatusMask(t *testing.T) {
	status := "Name:\tidle\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000004002\nSigCgt:\tfffffffe7fc1feff\n"
	got, ok := statusMask([]byte(status), "SigIgn:")
	if !ok || got != 0x4002 {
		t.Errorf("SigIgn = %#x, %v; want 0x4002", got, ok)
	}
	if _, ok := statusMask([]byte("Name:\tx\n"), "SigIgn:"); ok {
		t.Error("found a mask that is not there")
	}
}

func TestReadArgsSplitsCmdline(t *testing.T) {
	args, err := readArgs()
	if err != nil {
		t.Fatal(err)
	}
	if len(args) == 0 || !strings.HasSuffix(args[0], ".test") && !strings.Contains(args[0], "haltfleet-idle") {
		t.Errorf("args = %q", args)
	}
}
