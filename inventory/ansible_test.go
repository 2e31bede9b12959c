package inventory

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/haltfleet/haltfleet/internal/testenv"
)

// listCases are the inventories compared with ansible-inventory --list: each
// testdata/ansible/*.yml alone, then group_vars/host_vars, INI, an inventory
// directory and several -i sources.
func listCases(t *testing.T) [][]string {
	t.Helper()
	files, err := filepath.Glob("testdata/ansible/*.yml")
	if err != nil || len(files) < 6 {
		t.Fatalf("want at least 6 inventories in testdata/ansible, got %d (%v)", len(files), err)
	}
	var cases [][]string
	for _, f := range files {
		cases = append(cases, []string{f})
	}
	return append(cases,
		[]string{"testdata/gvfile/hosts.yml"},                            // group_vars/ and host_vars/ in every form
		[]string{"testdata/ini/hosts.ini"},                               // INI: ranges, :vars, :children, literal values
		[]string{"testdata/inigv/hosts"},                                 // INI without extension, with group_vars/
		[]string{"testdata/mixed"},                                       // a directory of YAML, INI and JSON, vars inside
		[]string{"testdata/multi/a/hosts.yml", "testdata/multi/b/hosts"}, // two -i sources, each with group_vars/
	)
}

// TestListJSONMatchesAnsible runs Debian's real ansible-inventory on each
// inventory and compares its --list output with ListJSON.
func TestListJSONMatchesAnsible(t *testing.T) {
	bin := testenv.NeedCommand(t, "ansible-inventory")
	for _, paths := range listCases(t) {
		t.Run(strings.ReplaceAll(strings.TrimPrefix(strings.Join(paths, "+"), "testdata/"), "/", "_"), func(t *testing.T) {
			inv, err := LoadAll(paths...)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			ours, err := inv.ListJSON()
			if err != nil {
				t.Fatalf("ListJSON: %v", err)
			}
			theirs := runAnsibleInventory(t, bin, inv.Skipped, paths...)
			compareListJSON(t, decodeJSON(t, theirs), decodeJSON(t, ours))
			// Same group order and number spelling too: a plain diff shows nothing.
			if !bytes.Equal(theirs, ours) {
				t.Errorf("output differs byte for byte:\nansible:\n%s\nours:\n%s", theirs, ours)
			}
		})
	}
}

func runAnsibleInventory(t *testing.T, bin string, skipped []string, files ...string) []byte {
	t.Helper()
	home := t.TempDir()
	args := []string{}
	for _, f := range files {
		args = append(args, "-i", f)
	}
	cmd := exec.Command(bin, append(args, "--list")...)
	// Keep Ansible from writing anywhere but the test's temp dir, and from
	// picking up a config or plugins from the machine.
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"ANSIBLE_LOCAL_TEMP=" + filepath.Join(home, "tmp"),
		"ANSIBLE_CONFIG=" + filepath.Join(home, "none.cfg"),
		"ANSIBLE_INVENTORY_ENABLED=yaml,ini",
		"ANSIBLE_NOCOLOR=1",
		"LC_ALL=C.UTF-8",
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ansible-inventory %s: %v\n%s", files, err, stderr.Bytes())
	}
	// A file Ansible cannot parse is only a warning: allowed for exactly the
	// files we skipped too. Warnings wrap anywhere, so compare without spaces.
	squashed := strings.Join(strings.Fields(stderr.String()), "")
	for _, f := range skipped {
		abs, _ := filepath.Abs(f)
		if !strings.Contains(squashed, "Unabletoparse"+abs+"asaninventorysource") {
			t.Errorf("we skipped %s, Ansible did not:\n%s", f, stderr.Bytes())
		}
	}
	if n := strings.Count(squashed, "asaninventorysource"); n != len(skipped) || strings.Count(squashed, "[WARNING]") > strings.Count(squashed, "toparse") {
		t.Fatalf("ansible-inventory %s warns beyond the %d files we skipped:\n%s", files, len(skipped), stderr.Bytes())
	}
	return out
}

func decodeJSON(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, data)
	}
	return v
}

// compareListJSON compares hostvars and group membership exactly, and
// "all".children regardless of order (Ansible orders it by discovery).
func compareListJSON(t *testing.T, theirs, ours map[string]any) {
	t.Helper()
	if !reflect.DeepEqual(theirs["_meta"], ours["_meta"]) {
		t.Errorf("hostvars differ:\nansible: %v\nours:    %v", theirs["_meta"], ours["_meta"])
	}
	for _, m := range []map[string]any{theirs, ours} {
		if all, ok := m["all"].(map[string]any); ok {
			if c, ok := all["children"].([]any); ok {
				slices.SortFunc(c, func(a, b any) int { return compareStrings(a.(string), b.(string)) })
			}
		}
	}
	groups := map[string]bool{}
	for _, m := range []map[string]any{theirs, ours} {
		for k := range m {
			if k != "_meta" {
				groups[k] = true
			}
		}
	}
	for g := range groups {
		if !reflect.DeepEqual(theirs[g], ours[g]) {
			t.Errorf("group %s differs:\nansible: %v\nours:    %v", g, theirs[g], ours[g])
		}
	}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestLimitMatchesAnsible asks the real `ansible --list-hosts` which hosts
// each pattern selects and compares the set with Limit's.
func TestLimitMatchesAnsible(t *testing.T) {
	bin := testenv.NeedCommand(t, "ansible")
	file := filepath.Join(t.TempDir(), "hosts.yml")
	if err := os.WriteFile(file, []byte(limitInventory), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, pattern := range []string{
		"all", "*", "web", "dc1", "ungrouped", "db,web1", "db:web1", "web*", "web?", "web[1a]",
		"web[!1]*", "~web[0-9]$", "~(db|fw)", "web,!web2", "!web", "web,&db", "dc1:&web:!web10",
		"web[0:1]", "web[-1]", "web[1:]", "2001:db8::1",
	} {
		t.Run(pattern, func(t *testing.T) {
			hosts, err := inv.Limit(pattern)
			if err != nil {
				t.Fatalf("Limit: %v", err)
			}
			ours := hostNames(hosts)
			theirs := ansibleListHosts(t, bin, file, pattern)
			slices.Sort(ours)
			slices.Sort(theirs)
			if !slices.Equal(ours, theirs) {
				t.Errorf("ours %v, ansible %v", ours, theirs)
			}
		})
	}
}

// TestLimitMatchesAnsibleINI does the same on the INI inventory, whose
// groups come from [x:children] sections, some declared late.
func TestLimitMatchesAnsibleINI(t *testing.T) {
	bin := testenv.NeedCommand(t, "ansible")
	const file = "testdata/ini/hosts.ini"
	inv, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, pattern := range []string{"all", "ungrouped", "dc1", "edge", "dc1:!web", "dc1:&db", "web*.example.net", "db-[ab]", "~^db", "dc1[1:2]", "lonely"} {
		t.Run(pattern, func(t *testing.T) {
			hosts, err := inv.Limit(pattern)
			if err != nil {
				t.Fatalf("Limit: %v", err)
			}
			ours, theirs := hostNames(hosts), ansibleListHosts(t, bin, file, pattern)
			slices.Sort(ours)
			slices.Sort(theirs)
			if !slices.Equal(ours, theirs) {
				t.Errorf("ours %v, ansible %v", ours, theirs)
			}
		})
	}
}

func ansibleListHosts(t *testing.T, bin, file, pattern string) []string {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(bin, "-i", file, "--list-hosts", "--", pattern)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "ANSIBLE_LOCAL_TEMP=" + filepath.Join(home, "tmp"),
		"ANSIBLE_CONFIG=" + filepath.Join(home, "none.cfg"), "ANSIBLE_INVENTORY_ENABLED=yaml,ini", "LC_ALL=C.UTF-8"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || bytes.Contains(stderr.Bytes(), []byte("WARNING")) {
		t.Fatalf("ansible --list-hosts %q: %v\n%s", pattern, err, stderr.Bytes())
	}
	hosts := []string{}
	for _, line := range strings.Split(string(out), "\n")[1:] {
		if line = strings.TrimSpace(line); line != "" {
			hosts = append(hosts, line)
		}
	}
	return hosts
}
