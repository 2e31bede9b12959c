package tasks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haltfleet/haltfleet/inventory"
)

// RenderRuleset renders through the inventory: a template over the host's variables,
// errors naming the file and line, and an empty ruleset refused.
func TestRenderRuleset(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("fw.nft.tmpl", "table inet f {\n chain c {\n  type filter hook input priority 0;\n  iifname {{ printf \"%q\" .wan }} drop\n }\n}\n")
	bad := write("bad.nft", "table inet f {\n\n chain c { iifname {{ .lan }} drop; }\n}\n")
	syntax := write("syntax.nft", "table inet f {\n{{ if }}\n}\n")
	empty := write("empty.nft", "# only a comment\n\n")
	inv, err := inventory.Parse(filepath.Join(dir, "hosts.yml"), []byte(`all:
  vars: {wan: eth1}
  hosts:
    tmpl: {haltfleet_ruleset: fw.nft.tmpl, haltfleet_ruleset_template: true}
    raw: {haltfleet_ruleset: fw.nft.tmpl}
    bad: {haltfleet_ruleset: bad.nft, haltfleet_ruleset_template: true}
    syntax: {haltfleet_ruleset: syntax.nft, haltfleet_ruleset_template: true}
    absent: {haltfleet_ruleset: absent.nft}
    empty: {haltfleet_ruleset: empty.nft}
`))
	if err != nil {
		t.Fatal(err)
	}
	render := func(host string) (string, error) { return RenderRuleset(inv.Host(host)) }

	got, err := render("tmpl")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, `iifname "eth1" drop`) {
		t.Errorf("template not rendered: %s", got)
	}
	raw, err := render("raw")
	if err != nil || !strings.Contains(raw, "{{") {
		t.Errorf("template=false must return the file as is: %q %v", raw, err)
	}
	// A missing key is an error naming the file and the line, never "<no value>".
	if _, err = render("bad"); err == nil || !strings.Contains(err.Error(), bad+":3") || !strings.Contains(err.Error(), "lan") {
		t.Errorf("want error naming %s:3 and the key, got %v", bad, err)
	}
	if _, err = render("syntax"); err == nil || !strings.Contains(err.Error(), syntax+":2") {
		t.Errorf("want parse error naming %s:2, got %v", syntax, err)
	}
	if _, err = render("absent"); err == nil || !strings.Contains(err.Error(), "absent.nft") {
		t.Errorf("want error naming the missing file, got %v", err)
	}
	if _, err = render("empty"); err == nil || !strings.Contains(err.Error(), "empty") || !strings.Contains(err.Error(), empty) {
		t.Errorf("an empty ruleset must be refused, got %v", err)
	}
}

func TestScrubTempPaths(t *testing.T) {
	in := RunDir + "/ruleset.check.0123abcd.nft:3:5-9: Error: syntax error"
	if got := scrubTempPaths(in); got != "ruleset:3:5-9: Error: syntax error" {
		t.Errorf("got %q", got)
	}
}

func TestSectionedParse(t *testing.T) {
	s := newSectioned()
	m := s.marker
	out := "noise\n" + m + " a\nfile\nwith newline\n\n" + m + " b\nno newline\n" + m + " c\n\n" + m + " d\nlast\n"
	got := s.parse([]byte(out))
	want := map[string]string{"a": "file\nwith newline\n", "b": "no newline", "c": "", "d": "last\n"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("section %s = %q, want %q", k, got[k], v)
		}
	}
}
