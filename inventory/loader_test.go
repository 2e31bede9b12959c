package inventory

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func mustParse(t *testing.T, src string) *Inventory {
	t.Helper()
	inv, err := Parse("inv/hosts.yml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return inv
}

func hostNames(hosts []*Host) []string {
	names := []string{}
	for _, h := range hosts {
		names = append(names, h.Name)
	}
	return names
}

func TestLoadStructure(t *testing.T) {
	inv, err := Load("testdata/ansible/nested.yml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hostNames(inv.Hosts), []string{"bastion", "fw-a", "fw-b", "core1", "fw-c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("hosts %v, want file order %v", got, want)
	}
	groups := []struct {
		name            string
		hosts, children []string
		line, depth     int
	}{
		{"all", []string{"bastion"}, []string{"ungrouped", "dc1", "dc2"}, 2, 0},
		{"ungrouped", []string{"bastion"}, nil, 0, 1},
		{"dc1", nil, []string{"dc1_fw", "dc1_core"}, 10, 1},
		{"dc1_fw", []string{"fw-a", "fw-b"}, nil, 15, 2},
		{"dc2", []string{"fw-c"}, nil, 25, 1},
	}
	for _, want := range groups {
		g := inv.Groups[want.name]
		if g == nil {
			t.Errorf("group %s missing", want.name)
			continue
		}
		if !reflect.DeepEqual(g.Hosts, want.hosts) && len(g.Hosts)+len(want.hosts) > 0 {
			t.Errorf("%s hosts %v, want %v", want.name, g.Hosts, want.hosts)
		}
		if !reflect.DeepEqual(g.Children, want.children) && len(g.Children)+len(want.children) > 0 {
			t.Errorf("%s children %v, want %v", want.name, g.Children, want.children)
		}
		if g.Pos.Line != want.line || g.Depth != want.depth {
			t.Errorf("%s at line %d depth %d, want line %d depth %d", want.name, g.Pos.Line, g.Depth, want.line, want.depth)
		}
	}
	fwb := inv.Host("fw-b")
	if got, want := fwb.Groups, []string{"all", "dc1", "dc1_fw"}; !reflect.DeepEqual(got, want) {
		t.Errorf("fw-b groups %v, want %v", got, want)
	}
	if fwb.Pos.String() != "testdata/ansible/nested.yml:20" {
		t.Errorf("fw-b at %s", fwb.Pos)
	}
	if inv.Host("nope") != nil {
		t.Error("Host(nope) found something")
	}
}

func TestMultiGroupHost(t *testing.T) {
	inv, err := Load("testdata/ansible/multigroup.yml")
	if err != nil {
		t.Fatal(err)
	}
	edge1 := inv.Host("edge1")
	if got, want := edge1.Groups, []string{"all", "firewalls_again", "berlin", "firewalls"}; !reflect.DeepEqual(got, want) {
		t.Errorf("edge1 groups %v, want %v", got, want)
	}
	if edge1.Vars["city"] != "berlin" || edge1.Vars["ansible_host"] != "192.0.2.1" || edge1.Vars["kind"] != "firewall" {
		t.Errorf("edge1 vars %v", edge1.Vars)
	}
	if got := inv.Groups["firewalls"].Depth; got != 2 {
		t.Errorf("firewalls depth %d, want 2 (below firewalls_again)", got)
	}
	if got := edge1.VarPos["city"]; got.Line != 12 {
		t.Errorf("edge1 city written at %v, want line 12", got)
	}
}

func TestYAML11Scalars(t *testing.T) {
	inv := mustParse(t, `all:
  hosts:
    h:
      a: yes
      b: Off
      c: "yes"
      d: 0755
      e: 0x10
      f: 1:30
      g: 1e3
      h: 1.5e+3
      i: -.inf
      j: ~
      k: 1_000
      l: !!str 12
      m: 0b101
      n: 99999999999999999999999
      o: !unsafe "{{ x }}"
`)
	want := map[string]any{"a": true, "b": false, "c": "yes", "d": 493, "e": 16, "f": 90, "g": "1e3",
		"h": 1500.0, "j": nil, "k": 1000, "l": "12", "m": 5, "n": "99999999999999999999999", "o": Unsafe("{{ x }}")}
	vars := inv.Host("h").Vars
	for k, w := range want {
		if !reflect.DeepEqual(vars[k], w) {
			t.Errorf("%s = %#v, want %#v", k, vars[k], w)
		}
	}
	if f, ok := vars["i"].(float64); !ok || f > -1e308 {
		t.Errorf("i = %#v, want -Inf", vars["i"])
	}
}

func TestMergeKeysAndAliases(t *testing.T) {
	inv := mustParse(t, `all:
  vars:
    base: &base {a: 1, b: 2}
  children:
    web: &web
      hosts:
        w1:
          <<: *base
          b: 3
    copy:
      <<: *web
`)
	w1 := inv.Host("w1")
	if w1.Vars["a"] != 1 || w1.Vars["b"] != 3 {
		t.Errorf("w1 vars %v: want merged a=1 and own b=3", w1.Vars)
	}
	if got := inv.Groups["copy"].Hosts; !reflect.DeepEqual(got, []string{"w1"}) {
		t.Errorf("copy hosts %v", got)
	}
}

func TestLoadDirectoryAndSeveralFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("10-web.yml", "web:\n  hosts:\n    w1:\n  vars:\n    x: 1\n")
	write("20-db.yaml", "db:\n  hosts:\n    d1:\n    w1:\n      y: 2\n")
	write("README", "not yaml: [")
	inv, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := hostNames(inv.Hosts); !reflect.DeepEqual(got, []string{"w1", "d1"}) {
		t.Errorf("hosts %v", got)
	}
	w1 := inv.Host("w1")
	if w1.Vars["x"] != 1 || w1.Vars["y"] != 2 || w1.VarPos["y"].File != filepath.Join(dir, "20-db.yaml") {
		t.Errorf("w1 vars %v at %v", w1.Vars, w1.VarPos)
	}
	inv2, err := LoadAll(filepath.Join(dir, "20-db.yaml"), filepath.Join(dir, "10-web.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := hostNames(inv2.Hosts); !reflect.DeepEqual(got, []string{"d1", "w1"}) {
		t.Errorf("hosts in -i order %v", got)
	}
}

func TestBadInventories(t *testing.T) {
	const f = "inv/hosts.yml:"
	tests := []struct {
		name, src string
		want      []string
	}{
		{"syntax", "all:\n  hosts: [a\n", []string{f + "1: YAML syntax: did not find expected ',' or ']'"}},
		{"tab indent", "all:\n\thosts:\n", []string{f + "2: YAML syntax"}},
		{"empty", "", []string{f + "0: empty inventory"}},
		{"null", "---\n~\n", []string{f + "2: empty inventory"}},
		{"two documents", "all:\n---\nweb:\n", []string{f + "2: more than one YAML document"}},
		{"top list", "- all\n", []string{f + "1: inventory must be a mapping of groups, got a list"}},
		{"group scalar", "web: foo\n", []string{f + `1: group "web": want a mapping`}},
		{"hosts list", "all:\n  hosts:\n    - a\n", []string{f + `3: group "all": hosts must be a mapping, got a list`}},
		{"children list", "all:\n  children: [a]\n", []string{f + `2: group "all": children must be a mapping`}},
		{"vars string", "web:\n  vars: x\n", []string{f + `2: group "web": vars must be a mapping, got scalar "x"`}},
		{"host vars list", "all:\n  hosts:\n    a: [1]\n", []string{f + `3: host "a": host vars must be a mapping, got a list`}},
		{"unknown section", "web:\n  host:\n    a:\n", []string{f + `2: group "web": unknown key "host"`}},
		{"duplicate host", "all:\n  hosts:\n    a:\n    a:\n", []string{f + `4: duplicate key "a" (first at line 3)`}},
		{"duplicate group", "web:\nweb:\n", []string{f + `2: duplicate key "web" (first at line 1)`}},
		{"duplicate var", "web:\n  vars:\n    x: 1\n    y: {a: 1, a: 2}\n", []string{f + `4: group "web": duplicate key "a"`}},
		{"self child", "a:\n  children:\n    a:\n", []string{f + `3: group "a": group cannot be its own child`}},
		{"cycle", "a:\n  children:\n    b:\n      children:\n        a:\n", []string{f + `3: group "a": child "b" makes a cycle: "a" is already below it`}},
		{"all as child", "web:\n  children:\n    all:\n", []string{`child "web" makes a cycle`}},
		{"reversed range", "all:\n  hosts:\n    fw[5:1]:\n", []string{f + `3: group "all": host "fw[5:1]": bad host range [5:1]: begin after end`}},
		{"open range", "all:\n  hosts:\n    db-[a:]:\n", []string{f + `3:`, `[a:]: no end value`}},
		{"reversed letters", "all:\n  hosts:\n    db-[c:a]:\n", []string{f + `3:`, `begin after end`}},
		{"width", "all:\n  hosts:\n    fw[01:100]:\n", []string{f + `3:`, `same width`}},
		{"zero step", "all:\n  hosts:\n    fw[1:9:0]:\n", []string{f + `3:`, `step must be a positive integer`}},
		{"unclosed range", "all:\n  hosts:\n    fw[1:9:\n", []string{f + `3:`, `has no closing ]`}},
		{"huge range", "all:\n  hosts:\n    fw[0:9999999]:\n", []string{f + `3:`, `more than 65536 hosts`}},
		{"bad priority", "web:\n  vars:\n    ansible_group_priority: high\n", []string{f + `3: group "web": ansible_group_priority must be an integer`}},
		{"unknown setting group", "web:\n  vars:\n    haltfleet_hlat: true\n", []string{f + `3: group "web": unknown haltfleet variable "haltfleet_hlat"`}},
		{"unknown setting host", "all:\n  hosts:\n    fw1:\n      haltfleet_x: 1\n", []string{f + `4: host "fw1": unknown haltfleet variable "haltfleet_x"`}},
		{"bad tag", "all:\n  vars:\n    x: !!int abc\n", []string{f + `3: group "all": invalid !!int "abc"`}},
		{"unknown tag", "all:\n  vars:\n    x: !custom abc\n", []string{f + `3: group "all": unsupported YAML tag !custom`}},
		{"non-scalar key", "all:\n  vars:\n    ? [a]\n    : 1\n", []string{f + `3: mapping key must be a scalar`}},
		{"flow key colon", "all:\n  hosts: {fw1:, fw2: }\n", []string{f + `2: key "fw1:": a colon right before , or }`}},
		{"several errors", "a:\n  vars: x\nb:\n  hosts: [1]\n", []string{f + `2: group "a"`, f + `4: group "b"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("inv/hosts.yml", []byte(tt.src))
			if err == nil {
				t.Fatalf("no error for:\n%s", tt.src)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestErrorsUnwrapToPositions(t *testing.T) {
	_, err := Parse("x.yml", []byte("web:\n  vars: 1\n"))
	var e *Error
	if !errors.As(err, &e) || e.Pos != (Pos{"x.yml", 2}) || e.Subject != `group "web"` {
		t.Fatalf("error %v: want *Error at x.yml:2 about group web", err)
	}
}

func TestHostileInput(t *testing.T) {
	var bomb strings.Builder
	bomb.WriteString("all:\n  vars:\n    l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 9; i++ {
		prev := "*l" + string(rune('0'+i-1))
		bomb.WriteString("    l" + string(rune('0'+i)) + ": &l" + string(rune('0'+i)) + " [" + strings.Repeat(prev+", ", 9) + prev + "]\n")
	}
	deep := "all:\n  vars:\n    deep: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n"
	var deepMap strings.Builder
	deepMap.WriteString("all:\n  vars:\n    deep:\n")
	for i := range 70 {
		deepMap.WriteString(strings.Repeat("  ", i+3) + "k:\n")
	}
	var deepGroups strings.Builder
	for i := range 40 {
		deepGroups.WriteString(strings.Repeat("    ", i) + "g" + strings.Repeat("x", i) + ":\n" + strings.Repeat("    ", i) + "  children:\n")
	}
	big := "all:\n  vars:\n    pad: \"" + strings.Repeat("a", maxFileSize) + "\"\n"
	// The same bomb built from group definitions instead of values.
	var groupBomb strings.Builder
	groupBomb.WriteString("g0: &g0 {hosts: {h: }}\n")
	for i := 1; i <= 9; i++ {
		groupBomb.WriteString(fmt.Sprintf("g%d: &g%d {children: {", i, i))
		for j := range 10 {
			groupBomb.WriteString(fmt.Sprintf("c%d_%d: *g%d, ", i, j, i-1))
		}
		groupBomb.WriteString("}}\n")
	}
	// Shallow where written, too deep where an alias puts it.
	aliasDeep := "all:\n  vars:\n    a: &a " + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "\n    b: " +
		strings.Repeat("[", 30) + "*a" + strings.Repeat("]", 30) + "\n"
	tests := []struct{ name, src, want string }{
		{"alias bomb", bomb.String(), "aliases expand to more than"},
		{"deep flow", deep, "nesting deeper than 64 levels"},
		{"deep block", deepMap.String(), "nesting deeper than 64 levels"},
		{"deep groups", deepGroups.String(), "nesting deeper than 64 levels"},
		{"over 16 MiB", big, "inv/hosts.yml:0: file larger than 16777216 bytes"},
		{"group alias bomb", groupBomb.String(), "aliases expand to more than"},
		{"deep through alias", aliasDeep, "nesting deeper than 64 levels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("inv/hosts.yml", []byte(tt.src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}
