package rollout

import (
	"reflect"
	"strings"
	"testing"
)

func members(spec string) []Member {
	var out []Member
	for _, f := range strings.Fields(spec) {
		name, group, _ := strings.Cut(f, ":")
		out = append(out, Member{Name: name, Group: group})
	}
	return out
}

func names(ms []Member, waves []Wave) [][]string {
	var out [][]string
	for _, w := range waves {
		var ns []string
		for _, i := range w {
			ns = append(ns, ms[i].Name)
		}
		out = append(out, ns)
	}
	return out
}

func TestPlanWaves(t *testing.T) {
	for _, tc := range []struct {
		name, hosts, serial string
		want                [][]string
		notes               []string
	}{
		{"no groups keep inventory order", "a b c d e", "1,50%",
			[][]string{{"a"}, {"b", "c"}, {"d", "e"}}, nil},
		{"a pair never shares a wave", "a:p b:p c d", "100%",
			[][]string{{"a", "c", "d"}, {"b"}},
			[]string{`b goes in wave 2, not 1: wave group "p" has a in wave 1`, "wave groups need 2 waves where serial gives 1"}},
		{"the next host that fits takes the place", "a:p b:p c d e", "2",
			[][]string{{"a", "c"}, {"b", "d"}, {"e"}},
			[]string{`b goes in wave 2, not 1: wave group "p" has a in wave 1`}},
		{"canary wave of one, pairs spread", "a:x b:x c:y d:y e f", "1,50%,100%",
			[][]string{{"a"}, {"b", "c", "e"}, {"d", "f"}},
			[]string{`d goes in wave 3, not 2: wave group "y" has c in wave 2`}},
		{"a group of three needs three waves", "a:g b:g c:g", "100%",
			[][]string{{"a"}, {"b"}, {"c"}},
			[]string{`b goes in wave 2, not 1: wave group "g" has a in wave 1`, `c goes in wave 3, not 1: wave group "g" has a in wave 1`,
				"wave groups need 3 waves where serial gives 1"}},
		{"no hosts, no waves", "", "1", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := members(tc.hosts)
			steps, err := ParseSerial(tc.serial)
			if err != nil {
				t.Fatal(err)
			}
			waves, notes, err := Plan(ms, steps)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(ms, waves); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("waves %v, want %v", got, tc.want)
			}
			if !reflect.DeepEqual(notes, tc.notes) {
				t.Errorf("notes %q, want %q", notes, tc.notes)
			}
			// Whatever the layout: every host exactly once, no group twice in a wave.
			seen := map[string]int{}
			for _, w := range waves {
				groups := map[string]bool{}
				for _, i := range w {
					seen[ms[i].Name]++
					if g := ms[i].Group; g != "" {
						if groups[g] {
							t.Errorf("group %s twice in a wave", g)
						}
						groups[g] = true
					}
				}
			}
			for _, m := range ms {
				if seen[m.Name] != 1 {
					t.Errorf("%s in %d waves", m.Name, seen[m.Name])
				}
			}
		})
	}
	if _, _, err := Plan(members("a a"), []Step{{N: 1}}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate host: %v", err)
	}
}
