package inventory

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkParseRanges loads 20000 hosts from ranges spread over nested groups.
func BenchmarkParseRanges(b *testing.B) {
	src := []byte(`all:
  vars: {site: x}
  children:
    dc:
      vars: {dc: one}
      children:
        fw:
          hosts:
            fw[00000:09999]:
              role: edge
        lb:
          hosts:
            lb[00000:09999]:
            fw[00000:04999]:
`)
	for b.Loop() {
		inv, err := Parse("bench.yml", src)
		if err != nil || len(inv.Hosts) != 20000 {
			b.Fatalf("%v, %d hosts", err, len(inv.Hosts))
		}
	}
}

// BenchmarkLoadINIWithHostVars loads a 2000-host INI inventory whose every
// host has a host_vars/ file and every group a group_vars/ directory: the
// stat and read cost of Ansible's vars layout at fleet size.
func BenchmarkLoadINIWithHostVars(b *testing.B) {
	dir := b.TempDir()
	var ini strings.Builder
	files := map[string]string{}
	for g := range 20 {
		fmt.Fprintf(&ini, "[g%02d]\n", g)
		for h := range 100 {
			name := fmt.Sprintf("fw%02d-%03d", g, h)
			fmt.Fprintf(&ini, "%s ansible_host=192.0.2.%d\n", name, h)
			files[filepath.Join("host_vars", name+".yml")] = "role: edge\nhaltfleet_deadman_seconds: 30\n"
		}
		files[filepath.Join("group_vars", fmt.Sprintf("g%02d", g), "main.yml")] = "site: x\n"
	}
	files["hosts"] = ini.String()
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		inv, err := Load(filepath.Join(dir, "hosts"))
		if err != nil || len(inv.Hosts) != 2000 || inv.Hosts[1999].Settings.DeadmanSeconds != 30 {
			b.Fatalf("%v, %d hosts", err, len(inv.Hosts))
		}
	}
}
