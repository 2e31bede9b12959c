package fleetlab

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestAddressing(t *testing.T) {
	for _, c := range []struct {
		slot, i int
		want    string
	}{
		{0, 1, "10.201.0.2"}, {0, 254, "10.201.0.255"}, {0, 255, "10.201.1.0"},
		{0, MaxHosts, "10.201.3.232"}, {2, 1, "10.201.32.2"}, {15, MaxHosts, "10.201.243.232"},
	} {
		if got := hostAddr(c.slot, c.i).String(); got != c.want {
			t.Errorf("hostAddr(%d, %d) = %s, want %s", c.slot, c.i, got, c.want)
		}
	}
	if got := ctlAddr(3).String(); got != "10.201.48.1" {
		t.Errorf("ctlAddr(3) = %s", got)
	}
}

func TestOurNS(t *testing.T) {
	re := ourNS("hff")
	for ns, want := range map[string]bool{
		"hff001": true, "hff999": true, "hff-net": true,
		"hfft001": false, "hff01": false, "hff0001": false, "xhff001": false, "hff-net2": false,
	} {
		if re.MatchString(ns) != want {
			t.Errorf("ourNS(hff) matches %q = %v, want %v", ns, !want, want)
		}
	}
}

func TestConfigDefaultsAndLimits(t *testing.T) {
	c, err := Config{StateDir: "rel/dir"}.withDefaults()
	if err != nil || c.Prefix != "hff" || c.Parallel != 16 || !filepath.IsAbs(c.StateDir) {
		t.Errorf("defaults: %+v %v", c, err)
	}
	for _, bad := range []Config{
		{Prefix: "Hff"}, {Prefix: "hff-x"}, {Prefix: "abcdefghi"}, {N: MaxHosts + 1}, {N: -1},
		{Slot: 16}, {StateDir: "/tmp/a,b"}, {CacheDir: "/tmp/a:b"},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/x\134y`: `/x\y`, `/t\04`: `/t\04`} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

// writeUpper must give each directory it creates the image's mode and owner, or the
// merged view of /root would turn world-readable and sshd would refuse the keys.
func TestWriteUpperCopiesDirAttributes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	lower, upper := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(lower, "home/hf/.ssh"), 0o755); err != nil {
		t.Fatal(err)
	}
	for dir, mode := range map[string]uint32{"home": 0o755, "home/hf": 0o750, "home/hf/.ssh": 0o700} {
		p := filepath.Join(lower, dir)
		if err := syscall.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if dir != "home" {
			if err := os.Chown(p, 1000, 1000); err != nil {
				t.Fatal(err)
			}
		}
	}
	err := writeUpper(lower, upper, []file{{path: "/home/hf/.ssh/authorized_keys", data: []byte("k\n"), mode: 0o600, uid: 1000, gid: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string][3]uint32{
		"home": {0o755, 0, 0}, "home/hf": {0o750, 1000, 1000}, "home/hf/.ssh": {0o700, 1000, 1000},
		"home/hf/.ssh/authorized_keys": {0o600, 1000, 1000},
	} {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(upper, dir), &st); err != nil {
			t.Fatal(err)
		}
		if got := [3]uint32{st.Mode & 0o7777, st.Uid, st.Gid}; got != want {
			t.Errorf("%s: mode/uid/gid %o/%d/%d, want %o/%d/%d", dir, got[0], got[1], got[2], want[0], want[1], want[2])
		}
	}
	if err := writeUpper(lower, upper, []file{{path: "/nope/x", mode: 0o644}}); err == nil {
		t.Errorf("a file in a directory the image lacks was accepted")
	}
}
