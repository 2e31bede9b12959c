package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/haltfleet/haltfleet/internal/sshdtest"
	"github.com/haltfleet/haltfleet/internal/testenv"
)

var runMu sync.Mutex

// haltfleet runs the CLI with swapped output and returns the exit code and output.
func haltfleet(t *testing.T, args ...string) (int, string) {
	t.Helper()
	runMu.Lock()
	defer runMu.Unlock()
	var out bytes.Buffer
	oldOut, oldErr := Stdout, Stderr
	Stdout, Stderr = &out, &out
	defer func() { Stdout, Stderr = oldOut, oldErr }()
	code := RunContext(context.Background(), args)
	return code, out.String()
}

func TestHelpListsEveryCommand(t *testing.T) {
	code, out := haltfleet(t, "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, c := range commands() {
		if !strings.Contains(out, "\n  "+c.name+" ") {
			t.Errorf("--help lacks %s", c.name)
		}
	}
	if code, _ := haltfleet(t, "frobnicate"); code != exitUsage {
		t.Errorf("unknown command: exit %d, want %d", code, exitUsage)
	}
	if code, out := haltfleet(t, "version"); code != 0 || !strings.HasPrefix(out, "haltfleet ") {
		t.Errorf("version: %d %q", code, out)
	}
}

func TestCompletionScriptsParse(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out := haltfleet(t, "completion", sh)
		if code != 0 || !strings.Contains(out, "haltfleet") {
			t.Fatalf("completion %s: exit %d", sh, code)
		}
		if sh == "bash" {
			testenv.NeedCommand(t, "bash")
			cmd := exec.Command("bash", "-n")
			cmd.Stdin = strings.NewReader(out)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("bash -n rejects the completion: %v %s", err, b)
			}
		}
	}
}

func TestBadInventoryNamesFileAndLine(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "hosts.yml")
	os.WriteFile(inv, []byte("all:\n  hosts:\n    fw1:\n      haltfleet_hlat: false\n"), 0o644)
	for _, cmd := range []string{"facts", "plan", "up"} {
		code, out := haltfleet(t, cmd, "-i", inv)
		if code != exitError || !strings.Contains(out, inv+":4") || !strings.Contains(out, "haltfleet_hlat") {
			t.Errorf("%s with a bad inventory: exit %d, output %q; want 1 naming %s:4", cmd, code, out, inv)
		}
	}
}

// The CLI's --list must match Debian's ansible-inventory, and --limit must select the
// hosts `ansible PATTERN --list-hosts` selects (ansible-inventory 2.14 has no --limit).
func TestInventoryListMatchesAnsible(t *testing.T) {
	testenv.NeedCommand(t, "ansible-inventory", "ansible")
	inv, _ := filepath.Abs("../../../examples/hosts.yml")
	ansible := func(args ...string) []byte {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "ANSIBLE_LOCAL_TEMP="+t.TempDir())
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out
	}
	code, out := haltfleet(t, "inventory", "-i", inv, "--list")
	if code != 0 {
		t.Fatalf("inventory --list: exit %d: %s", code, out)
	}
	var got, exp any
	json.Unmarshal([]byte(out), &got)
	json.Unmarshal(ansible("ansible-inventory", "-i", inv, "--list"), &exp)
	if !reflect.DeepEqual(normalise(got), normalise(exp)) {
		t.Errorf("--list differs from ansible-inventory:\nours: %s", out)
	}
	for _, limit := range []string{"edge", "fw01*", "all:!probes", "~fw0[2-9].*", "edge:&all", "lan1.example.net,fw02.example.net"} {
		code, out := haltfleet(t, "inventory", "-i", inv, "--list", "--limit", limit)
		if code != 0 {
			t.Fatalf("--limit %q: exit %d: %s", limit, code, out)
		}
		var doc struct {
			Meta struct {
				Hostvars map[string]any `json:"hostvars"`
			} `json:"_meta"`
		}
		json.Unmarshal([]byte(out), &doc)
		var ours []string
		for h := range doc.Meta.Hostvars {
			ours = append(ours, h)
		}
		var theirs []string
		for _, line := range strings.Split(string(ansible("ansible", "-i", inv, limit, "--list-hosts")), "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "hosts (") {
				theirs = append(theirs, l)
			}
		}
		sortStrings(ours)
		sortStrings(theirs)
		if !reflect.DeepEqual(ours, theirs) {
			t.Errorf("--limit %q: ours %v, ansible %v", limit, ours, theirs)
		}
	}
}

// normalise sorts host lists and drops empty groups, which ansible-inventory omits
// differently across versions.
func normalise(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	for k, g := range m {
		gm, ok := g.(map[string]any)
		if !ok {
			continue
		}
		if hs, ok := gm["hosts"].([]any); ok {
			var s []string
			for _, h := range hs {
				s = append(s, fmt.Sprint(h))
			}
			sortStrings(s)
			gm["hosts"] = s
		}
		if k != "_meta" && len(gm) == 0 {
			delete(m, k)
		}
	}
	return m
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// A host that wants a halt but never answered SSH is unreachable, not "halted": only a
// host the journal records as halted by haltfleet is probed instead of logged into.
func TestSilentHostWithoutJournalIsUnreachable(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "hosts.yml")
	port := sshdtest.FreePort(t) // nothing listens there
	os.WriteFile(inv, []byte(fmt.Sprintf("all:\n  hosts:\n    silent:\n      ansible_host: 127.0.0.1\n      ansible_port: %d\n", port)), 0o644)
	code, out := haltfleet(t, "up", "-i", inv, "-F", "none", "--yes", "--journal", filepath.Join(dir, "journal.ndjson"), "--timeout", "2s")
	if code != exitError || !strings.Contains(out, "unreachable=1") || strings.Contains(out, "halted=1") {
		t.Fatalf("silent host without a journal record: exit %d, want 1 and unreachable\n%s", code, out)
	}
	if !strings.Contains(out, "no record of haltfleet halting it") {
		t.Errorf("the error does not say why it is not taken for halted:\n%s", out)
	}
}

// TestInventorySkippedFilesAreWarned: a file in an inventory directory that is no
// inventory is named on stderr, as ansible-inventory warns, and the rest loads.
func TestInventorySkippedFilesAreWarned(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hosts.yml"), []byte("fw:\n  hosts:\n    fw1:\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "NOTES"), []byte("not an inventory: [\n"), 0o644)
	code, out := haltfleet(t, "inventory", "-i", dir, "--list")
	if code != 0 || !strings.Contains(out, "warning: "+filepath.Join(dir, "NOTES")+": skipped") || !strings.Contains(out, "fw1") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}
