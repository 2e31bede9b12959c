package inventory

import (
	"reflect"
	"testing"
)

func TestVarPrecedence(t *testing.T) {
	tests := []struct {
		name, src, host, key string
		want                 any
		line                 int // where the winning value is written
	}{
		{"group over all", "all:\n  vars: {x: all}\n  children:\n    g:\n      vars: {x: g}\n      hosts: {h: }\n", "h", "x", "g", 5},
		{"all alone", "all:\n  vars: {x: all}\n  children:\n    g:\n      hosts: {h: }\n", "h", "x", "all", 2},
		{"host over group", "g:\n  vars: {x: g}\n  hosts:\n    h: {x: host}\n", "h", "x", "host", 4},
		{"child over parent, child written first",
			"child:\n  vars: {x: child}\n  hosts: {h: }\nparent:\n  vars: {x: parent}\n  children: {child: }\n", "h", "x", "child", 2},
		{"grandchild over child",
			"a:\n  vars: {x: a}\n  children:\n    b:\n      vars: {x: b}\n      children:\n        c:\n          vars: {x: c}\n          hosts: {h: }\n", "h", "x", "c", 8},
		{"siblings merge by name: zz beats aa",
			"zz:\n  vars: {x: zz}\n  hosts: {h: }\naa:\n  vars: {x: aa}\n  hosts: {h: }\n", "h", "x", "zz", 2},
		{"priority beats name",
			"aa:\n  vars: {x: aa, ansible_group_priority: 2}\n  hosts: {h: }\nzz:\n  vars: {x: zz}\n  hosts: {h: }\n", "h", "x", "aa", 2},
		{"depth beats priority",
			"p:\n  vars: {x: p, ansible_group_priority: 99}\n  hosts: {h: }\nq:\n  children:\n    r:\n      vars: {x: r}\n      hosts: {h: }\n", "h", "x", "r", 7},
		{"longest path decides depth",
			// d sits at depth 1 under all and depth 3 under a/b: depth 3 wins over c (depth 2).
			"a:\n  children:\n    b:\n      children:\n        d:\n          vars: {x: d}\n    c:\n      vars: {x: c}\n      hosts: {h: }\nd:\n  hosts: {h: }\n", "h", "x", "d", 6},
		{"group redefined: later value wins",
			"g:\n  vars: {x: first}\n  hosts: {h: }\nall:\n  children:\n    g:\n      vars: {x: second}\n", "h", "x", "second", 7},
		{"host vars from two groups: later wins",
			"a:\n  hosts:\n    h: {x: from-a}\nb:\n  hosts:\n    h: {x: from-b}\n", "h", "x", "from-b", 6},
		{"dicts replace, not merge",
			"all:\n  vars:\n    d: {a: 1, b: 2}\n  children:\n    g:\n      vars:\n        d: {a: 3}\n      hosts: {h: }\n", "h", "d", map[string]any{"a": 3}, 7},
		{"port from first mention", "a:\n  hosts:\n    h:2222:\nb:\n  hosts:\n    h:2200:\n", "h", "ansible_port", 2222, 3},
		{"priority is not a var", "g:\n  vars: {ansible_group_priority: 3}\n  hosts: {h: }\n", "h", "ansible_group_priority", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := mustParse(t, tt.src)
			h := inv.Host(tt.host)
			if h == nil {
				t.Fatalf("no host %s", tt.host)
			}
			if got := h.Vars[tt.key]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %#v, want %#v (groups %v)", tt.key, got, tt.want, h.Groups)
			}
			if got := h.VarPos[tt.key].Line; got != tt.line {
				t.Errorf("%s written at line %d, want %d", tt.key, got, tt.line)
			}
		})
	}
}

func TestUngrouped(t *testing.T) {
	inv, err := Load("testdata/ansible/ungrouped.yml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := inv.Groups["ungrouped"].Hosts, []string{"stray", "lonely"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ungrouped hosts %v, want %v", got, want)
	}
	for host, want := range map[string][]string{
		"lonely": {"all", "ungrouped"},
		"stray":  {"all", "ungrouped"},
		"both":   {"all", "web"},
	} {
		if got := inv.Host(host).Groups; !reflect.DeepEqual(got, want) {
			t.Errorf("%s groups %v, want %v", host, got, want)
		}
	}
}
