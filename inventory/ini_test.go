package inventory

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestINIStructureAndVars(t *testing.T) {
	src := `# comment
; comment
bastion ansible_host=198.51.100.7
[web]
web[1:2] http_port=80 haltfleet_halt=false
[web:vars]
tier = front
ansible_group_priority = 5
haltfleet_probes = [{'from': 'controller', 'to': '192.0.2.9:22', 'expect': 'closed'}]
[dc:children]
web
late
[late]
fw1:2222 haltfleet_sysctls="{'net.ipv4.ip_forward': 1}"
[late:vars]
tier = back
`
	inv, err := Parse("inv/hosts", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := hostNames(inv.Hosts); !reflect.DeepEqual(got, []string{"bastion", "web1", "web2", "fw1"}) {
		t.Errorf("hosts %v", got)
	}
	if got := inv.Groups["dc"].Children; !reflect.DeepEqual(got, []string{"web", "late"}) {
		t.Errorf("dc children %v (late is declared after [dc:children])", got)
	}
	if got := inv.Groups["ungrouped"].Hosts; !reflect.DeepEqual(got, []string{"bastion"}) {
		t.Errorf("ungrouped %v", got)
	}
	if inv.Groups["web"].Priority != 5 {
		t.Errorf("web priority %d", inv.Groups["web"].Priority)
	}
	w := inv.Host("web2")
	if w.Vars["http_port"] != 80 || w.Vars["tier"] != "front" || w.Settings.Halt || len(w.Settings.Probes) != 1 {
		t.Errorf("web2 vars %v settings %+v", w.Vars, w.Settings)
	}
	if p := w.Settings.Probes[0]; p.Pos != (Pos{"inv/hosts", 9}) || p.Expect != "closed" {
		t.Errorf("probe %+v", p)
	}
	if got := w.VarPos["tier"]; got != (Pos{"inv/hosts", 7}) {
		t.Errorf("tier written at %v, want inv/hosts:7", got)
	}
	fw := inv.Host("fw1")
	if fw.Vars["ansible_port"] != 2222 || fw.Settings.Sysctls["net.ipv4.ip_forward"] != "1" || fw.Vars["tier"] != "back" {
		t.Errorf("fw1 vars %v settings %+v", fw.Vars, fw.Settings)
	}
}

func TestFormatDetection(t *testing.T) {
	tests := []struct {
		name, path, src string
		hosts           []string
		err             string
	}{
		{"INI in a .yml file", "inv/hosts.yml", "[web]\nw1\n", []string{"w1"}, ""},
		{"bare host list", "inv/hosts", "w1\nw2:2222\n", []string{"w1", "w2"}, ""},
		{"YAML without extension", "inv/hosts", "web:\n  hosts:\n    w1:\n", []string{"w1"}, ""},
		{"JSON", "inv/hosts.json", `{"web": {"hosts": {"w1": {"x": 1e3}}}}`, []string{"w1"}, ""},
		{".ini is INI only", "inv/hosts.ini", "web:\n  hosts:\n", nil, `inv/hosts.ini:1: group "ungrouped": host "web:": a trailing ':' must be followed by a port`},
		{"bad INI line in a .yml file", "inv/hosts.yml", "[web]\nw1 oops\n", nil, `inv/hosts.yml:2: group "web": host "w1": expected key=value host variable, got "oops"`},
		{"YAML error when it does not look INI", "inv/hosts.yml", "all:\n  hosts: [a\n", nil, "inv/hosts.yml:1: YAML syntax"},
		{"comments only", "inv/hosts", "# nothing\n", nil, "inv/hosts:0: empty inventory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := Parse(tt.path, []byte(tt.src))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := hostNames(inv.Hosts); !reflect.DeepEqual(got, tt.hosts) {
				t.Errorf("hosts %v, want %v", got, tt.hosts)
			}
		})
	}
	inv, err := Parse("inv/hosts.json", []byte(`{"all": {"vars": {"f": 1e3, "i": 10, "u": {"__ansible_unsafe": "{{ x }}"}}}, "web": {"hosts": {"w": null}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if v := inv.Host("w").Vars; v["f"] != 1000.0 || v["i"] != 10 || v["u"] != Unsafe("{{ x }}") {
		t.Errorf("JSON typed as YAML 1.1, not as Python's json: %#v", v)
	}
}

func TestBadINI(t *testing.T) {
	const f = "inv/hosts.ini:"
	tests := []struct {
		name, src string
		want      []string
	}{
		{"unknown section type", "[web:hosts2]\n", []string{f + `1: section [web:hosts2] has unknown type "hosts2"`}},
		{"spaces in section", "[web stuff]\n", []string{f + `1: invalid section entry "[web stuff]"`}},
		{"host token without =", "[web]\nh1 foo\n", []string{f + `2: group "web": host "h1": expected key=value host variable, got "foo"`}},
		{"var without =", "[web]\n[web:vars]\nnoequals\n", []string{f + `3: group "web": expected key=value, got "noequals"`}},
		{"bad child name", "[web:children]\nbad child\n", []string{f + `2: group "web": expected a group name, got "bad child"`}},
		{"vars of undefined group", "[web:vars]\nx=1\n", []string{f + `1: group "web": section [web:vars] for a group with no [web]`}},
		{"undefined child", "[web]\n[dc:children]\nweb\nmissing\n", []string{f + `4: group "dc": [dc:children] names group "missing"`}},
		{"cycle", "[a]\n[b]\n[a:children]\nb\n[b:children]\na\n", []string{f + `6: group "b": child "a" makes a cycle`}},
		{"unclosed quote", "h x=\"unclosed\n", []string{f + `1: group "ungrouped": host definition "h x=\"unclosed": No closing quotation`}},
		{"set value", "h x={1,2}\n", []string{f + `1: group "ungrouped": host "h": x: a Python set`}},
		{"complex value", "[g]\n[g:vars]\nx=1j\n", []string{f + `3: group "g": x: a Python complex number`}},
		{"reversed range", "[web]\nweb[5:1]\n", []string{f + `2: group "web": host "web[5:1]": bad host range [5:1]: begin after end`}},
		{"trailing colon", "[web]\nh:\n", []string{f + `2: group "web": host "h:": a trailing ':'`}},
		{"yaml marker", "---\n", []string{f + `1:`, `'---' is a sign this is a YAML file`}},
		{"bad host setting", "[web]\nh haltfleet_halt=maybe\n", []string{f + `2: host "h": haltfleet_halt: want a boolean, got "maybe"`}},
		{"bad group setting", "[web]\n[web:vars]\nhaltfleet_deadman_seconds=-1\n", []string{f + `3: group "web": haltfleet_deadman_seconds: must be greater than 0, got -1`}},
		{"unknown setting", "h haltfleet_hlat=1\n", []string{f + `1: host "h": unknown haltfleet variable "haltfleet_hlat"`}},
		{"bad priority", "[web]\n[web:vars]\nansible_group_priority=high\n", []string{f + `3: group "web": ansible_group_priority must be an integer`}},
		{"control character", "[web]\nh\x1b[2J\n", []string{f + `2: group "web": host "h\x1b[2J": control or bidi character`}},
		{"invalid UTF-8", "[web]\nh\xff\n", []string{f + `2: not valid UTF-8`}},
		{"bad probe", "[web]\n[web:vars]\nhaltfleet_probes=[{'from': 'nowhere', 'to': '192.0.2.9:22', 'expect': 'open'}]\n",
			[]string{f + `3: host`, `haltfleet_probes: from "nowhere" is neither an inventory host`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.src
			if strings.Contains(tt.name, "probe") {
				src = "[web]\nh\n" + strings.TrimPrefix(src, "[web]\n")
				tt.want[0] = f + "4: host"
			}
			_, err := Parse("inv/hosts.ini", []byte(src))
			if err == nil {
				t.Fatalf("no error for:\n%s", src)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
			var e *Error
			if !errors.As(err, &e) || e.Pos.File != "inv/hosts.ini" || e.Pos.Line == 0 {
				t.Errorf("error %v does not unwrap to a located *Error", err)
			}
		})
	}
}
