package inventory

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// writeTree writes files (path → content) under a new temp dir and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const gvInventory = `all:
  vars: {x: inv-all}
  children:
    dc:
      vars: {x: inv-dc}
      children:
        web:
          vars: {x: inv-web}
          hosts:
            h: {hx: inv-host}
    aa:
      vars: {ansible_group_priority: 2}
      hosts: {h: }
    zz:
      hosts: {h: }
`

func TestVarsFilesPrecedence(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		key   string
		want  any
		at    string // file:line where the winning value is written, relative to the temp dir
	}{
		{"group_vars/all beats any group in the inventory",
			map[string]string{"group_vars/all.yml": "x: gv-all\n"}, "x", "gv-all", "group_vars/all.yml:1"},
		{"group_vars of a group beats group_vars/all",
			map[string]string{"group_vars/all.yml": "x: gv-all\n", "group_vars/dc.yml": "x: gv-dc\n"}, "x", "gv-dc", "group_vars/dc.yml:1"},
		{"child's group_vars beat the parent's",
			map[string]string{"group_vars/dc.yml": "x: gv-dc\n", "group_vars/web.yaml": "\nx: gv-web\n"}, "x", "gv-web", "group_vars/web.yaml:2"},
		{"inventory host var beats group_vars",
			map[string]string{"group_vars/web.yml": "hx: gv-web\n"}, "hx", "inv-host", "hosts.yml:10"},
		{"host_vars beat the inventory host var",
			map[string]string{"host_vars/h.yml": "hx: hv\n"}, "hx", "hv", "host_vars/h.yml:1"},
		{"name without extension is read, name.yml not",
			map[string]string{"group_vars/web": "y: plain\n", "group_vars/web.yml": "y: [never read\n"}, "y", "plain", "group_vars/web:1"},
		{"directory: files in name order, the last wins",
			map[string]string{"group_vars/web/b.yml": "y: b\n", "group_vars/web/a.json": `{"y": "a"}`, "group_vars/web/sub/c.yaml": "y: c\n",
				"group_vars/web/.d.yml": "y: hidden\n", "group_vars/web/e.yml~": "y: backup\n", "group_vars/web/f.txt": "y: text\n"}, "y", "c", "group_vars/web/sub/c.yaml:1"},
		{"inventory priority orders group_vars files: aa (priority 2) beats zz",
			map[string]string{"group_vars/aa.yml": "y: aa\n", "group_vars/zz.yml": "y: zz\n"}, "y", "aa", "group_vars/aa.yml:1"},
		{"ansible_group_priority in group_vars is only a variable",
			map[string]string{"group_vars/zz.yml": "y: zz\nansible_group_priority: 9\n", "group_vars/aa.yml": "y: aa\n"}, "ansible_group_priority", 9, "group_vars/zz.yml:2"},
		{"empty file is ignored",
			map[string]string{"group_vars/web.yml": "---\n", "group_vars/dc.yml": "x: gv-dc\n"}, "x", "gv-dc", "group_vars/dc.yml:1"},
		{"depth beats group_vars priority: web under dc beats aa",
			map[string]string{"group_vars/web.yml": "y: web\n", "group_vars/aa.yml": "y: aa\n"}, "y", "web", "group_vars/web.yml:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.files["hosts.yml"] = gvInventory
			dir := writeTree(t, tt.files)
			inv, err := Load(filepath.Join(dir, "hosts.yml"))
			if err != nil {
				t.Fatal(err)
			}
			h := inv.Host("h")
			if got := h.Vars[tt.key]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %#v, want %#v", tt.key, got, tt.want)
			}
			if got, want := h.VarPos[tt.key].String(), filepath.Join(dir, tt.at); got != want {
				t.Errorf("%s written at %s, want %s", tt.key, got, want)
			}
		})
	}
}

func TestVarsFilesSettings(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"inv/hosts":                 "[fw]\nfw1\nfw2 haltfleet_deadman_seconds=20\n",
		"inv/group_vars/all.yml":    "haltfleet_deadman_seconds: 90\nhaltfleet_ruleset: rules/fw.nft\n",
		"inv/host_vars/fw1/a.yml":   "haltfleet_halt: false\n",
		"inv/host_vars/fw1/b.json":  `{"haltfleet_manage_ports": [22, 2222]}`,
		"inv/group_vars/fw.yml":     "haltfleet_ssh_gone_seconds: 15\n",
		"inv/group_vars/nosuch.yml": "haltfleet_halt: not-a-bool\n", // no such group: never read, as in Ansible
	})
	inv, err := Load(filepath.Join(dir, "inv/hosts"))
	if err != nil {
		t.Fatal(err)
	}
	fw1, fw2 := inv.Host("fw1").Settings, inv.Host("fw2").Settings
	if fw1.Halt || fw1.DeadmanSeconds != 90 || fw1.SSHGoneSeconds != 15 || !reflect.DeepEqual(fw1.ManagePorts, []int{22, 2222}) {
		t.Errorf("fw1 settings %+v", fw1)
	}
	if !fw2.Halt || fw2.DeadmanSeconds != 20 {
		t.Errorf("fw2 settings %+v (its own INI var beats group_vars/all)", fw2)
	}
	if want := filepath.Join(dir, "inv/rules/fw.nft"); fw1.Ruleset != want {
		t.Errorf("ruleset %s, want %s: relative to the inventory's directory", fw1.Ruleset, want)
	}
}

func TestVarsFilesErrors(t *testing.T) {
	tests := []struct {
		name, file, src string
		want            string // after the temp dir
	}{
		{"bad setting", "group_vars/web.yml", "x: 1\nhaltfleet_halt: maybe\n", `/group_vars/web.yml:2: group "web": haltfleet_halt: want a boolean, got "maybe"`},
		{"list", "host_vars/h.yml", "- a\n", `/host_vars/h.yml:1: host "h": vars file must be a mapping of variables, got a list`},
		{"syntax", "group_vars/all/x.yml", "a: [1\n", `/group_vars/all/x.yml:1: group "all": YAML syntax`},
		{"vault", "group_vars/dc.yml", "$ANSIBLE_VAULT;1.1;AES256\n6162\n", `/group_vars/dc.yml:1: group "dc": vault-encrypted file`},
		{"unknown setting", "host_vars/h", "haltfleet_hlat: true\n", `/host_vars/h:1: host "h": unknown haltfleet variable "haltfleet_hlat"`},
		{"two documents", "group_vars/aa.json", "a: 1\n---\nb: 2\n", `/group_vars/aa.json:2: group "aa": more than one YAML document`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, map[string]string{"hosts.yml": gvInventory, tt.file: tt.src})
			_, err := Load(filepath.Join(dir, "hosts.yml"))
			if err == nil || !strings.Contains(err.Error(), dir+tt.want) {
				t.Fatalf("error %v\nwant %s", err, dir+tt.want)
			}
		})
	}
}

func TestVarsFilesHostile(t *testing.T) {
	t.Run("too many files in a vars directory", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"hosts.yml": gvInventory})
		gv := filepath.Join(dir, "group_vars", "web")
		if err := os.MkdirAll(gv, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range maxDirEntries + 1 {
			if err := os.WriteFile(filepath.Join(gv, fmt.Sprintf("%05d.yml", i)), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		_, err := Load(filepath.Join(dir, "hosts.yml"))
		if err == nil || !strings.Contains(err.Error(), gv+": more than 10000 entries") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("directory symlink loop", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"hosts.yml": gvInventory, "group_vars/web/a.yml": "y: 1\n"})
		if err := os.Symlink("..", filepath.Join(dir, "group_vars/web/up")); err != nil {
			t.Fatal(err)
		}
		_, err := Load(filepath.Join(dir, "hosts.yml"))
		if err == nil || !strings.Contains(err.Error(), "symlink loop") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("self symlink", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"hosts.yml": gvInventory, "group_vars/.keep": ""})
		p := filepath.Join(dir, "group_vars/web.yml")
		if err := os.Symlink("web.yml", p); err != nil {
			t.Fatal(err)
		}
		_, err := Load(filepath.Join(dir, "hosts.yml"))
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "too many levels of symbolic links") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("FIFO is refused, not read", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"hosts.yml": gvInventory, "host_vars/.keep": ""})
		p := filepath.Join(dir, "host_vars/h.yml")
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
		_, err := Load(filepath.Join(dir, "hosts.yml"))
		if err == nil || !strings.Contains(err.Error(), p+": not a regular file") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("huge vars file", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"hosts.yml": gvInventory, "group_vars/all.yml": "pad: " + strings.Repeat("a", maxFileSize) + "\n"})
		_, err := Load(filepath.Join(dir, "hosts.yml"))
		if err == nil || !strings.Contains(err.Error(), "group_vars/all.yml:0: group \"all\": file larger than 16777216 bytes") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("group name climbing out is not a path", func(t *testing.T) {
		dir := writeTree(t, map[string]string{
			"inv/hosts":     "[../secret]\nh\n",
			"secret.yml":    "stolen: true\n",
			"inv/README.md": "",
		})
		inv, err := Load(filepath.Join(dir, "inv/hosts"))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := inv.Host("h").Vars["stolen"]; ok {
			t.Error("group ../secret read group_vars/../secret.yml")
		}
	})
	t.Run("inventory directory symlink loop", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"inv/hosts.yml": gvInventory})
		if err := os.Symlink(".", filepath.Join(dir, "inv/self")); err != nil {
			t.Fatal(err)
		}
		_, err := Load(filepath.Join(dir, "inv"))
		if err == nil || !strings.Contains(err.Error(), "symlink loop") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestInventoryDirectory(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"10-web.yml":          "web:\n  hosts:\n    w1:\n",
		"20-db":               "[db]\nd1\n",
		"sub/30-edge.json":    `{"edge": {"hosts": {"e1": null}}}`,
		"hosts.ini":           "[ignored]\nx1\n", // Ansible ignores *.ini in a directory
		"notes.txt":           "[ignored]\nx2\n",
		".hidden.yml":         "hidden:\n  hosts:\n    x3:\n",
		"group_vars/web.yml":  "v: 1\n",
		"host_vars/d1.yml":    "v: 2\n",
		"NOTES":               "not an inventory: [\n",
		"rulesets/web.nft":    "table inet filter {\n}\n",
		"group_vars/db/a.yml": "v: 3\n",
		"empty":               "# nothing yet\n",
	})
	inv, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := hostNames(inv.Hosts); !reflect.DeepEqual(got, []string{"w1", "d1", "e1"}) {
		t.Errorf("hosts %v", got)
	}
	if inv.Host("w1").Vars["v"] != 1 || inv.Host("d1").Vars["v"] != 2 {
		t.Errorf("vars w1 %v d1 %v", inv.Host("w1").Vars, inv.Host("d1").Vars)
	}
	want := []string{filepath.Join(dir, "NOTES"), filepath.Join(dir, "rulesets/web.nft")}
	if !reflect.DeepEqual(inv.Skipped, want) {
		t.Errorf("skipped %v, want %v", inv.Skipped, want)
	}
	// The same files named alone are errors, not skips.
	if _, err := Load(filepath.Join(dir, "NOTES")); err == nil || !strings.Contains(err.Error(), "NOTES:1:") {
		t.Errorf("NOTES alone: %v", err)
	}
}
