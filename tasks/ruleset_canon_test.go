package tasks

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func canonFile(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "ruleset", name))
	if err != nil {
		t.Fatal(err)
	}
	c, err := CanonicalRuleset(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

// The JSON files are real `nft -j list ruleset` captures (testdata/ruleset/capture.sh).
func TestCanonicalRulesetCaptures(t *testing.T) {
	base := canonFile(t, "base.json")
	if len(base) == 0 {
		t.Fatal("empty canonical form")
	}
	for _, c := range []struct {
		file  string
		equal bool
		why   string
	}{
		{"reordered.json", true, "same ruleset declared in another order with shuffled elements"},
		{"base-traffic.json", true, "only counters differ"},
		{"port.json", false, "a forwarded port changed"},
		{"extra_rule.json", false, "one more rule"},
		{"rules_swapped.json", false, "two rules swapped: rule order is meaning"},
	} {
		got := canonFile(t, c.file)
		if slices.Equal(base, got) != c.equal {
			t.Errorf("%s vs base.json: equal=%v, want %v (%s)\nbase: %s\ngot:  %s", c.file, !c.equal, c.equal, c.why,
				strings.Join(base, "\n      "), strings.Join(got, "\n      "))
		}
	}
}

func TestCanonicalRulesetDropsState(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "ruleset", "base-traffic.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"packets": 3`) {
		t.Fatal("capture has no non-zero counter; rerun capture.sh")
	}
	for _, l := range canonFile(t, "base-traffic.json") {
		for _, k := range []string{`"handle"`, `"packets"`, `"bytes"`, `"metainfo"`} {
			if strings.Contains(l, k) {
				t.Errorf("canonical line keeps %s: %s", k, l)
			}
		}
	}
}

func TestCanonicalRulesetDynamicSetsAndOrder(t *testing.T) {
	a := `{"nftables":[{"metainfo":{"version":"1.0.6"}},
	 {"set":{"family":"inet","table":"t","name":"seen","type":"ipv4_addr","flags":["dynamic","timeout"],"handle":3,
	   "elem":[{"elem":{"val":"10.0.0.1","expires":1200}}]}},
	 {"set":{"family":"inet","table":"t","name":"s","type":"inet_service","handle":4,"elem":[80,22]}},
	 {"quota":{"family":"inet","table":"t","name":"q","handle":5,"bytes":1000,"used":77,"inv":false}},
	 {"table":{"family":"inet","name":"t","handle":1}}]}`
	b := `{"nftables":[{"table":{"family":"inet","name":"t","handle":9}},
	 {"quota":{"family":"inet","table":"t","name":"q","handle":2,"bytes":1000,"used":0,"inv":false}},
	 {"set":{"family":"inet","table":"t","name":"s","type":"inet_service","handle":3,"elem":[22,80]}},
	 {"set":{"family":"inet","table":"t","name":"seen","type":"ipv4_addr","flags":["dynamic","timeout"],"handle":4}}]}`
	ca, err := CanonicalRuleset([]byte(a))
	if err != nil {
		t.Fatal(err)
	}
	cb, err := CanonicalRuleset([]byte(b))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ca, cb) {
		t.Errorf("want equal:\n%s\n--\n%s", strings.Join(ca, "\n"), strings.Join(cb, "\n"))
	}
	// A quota object's "bytes" is its limit (nft 1.0.6 JSON), so a different one must differ.
	c := strings.Replace(b, `"bytes":1000`, `"bytes":2000`, 1)
	cc, err := CanonicalRuleset([]byte(c))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(cb, cc) {
		t.Error("a different quota limit compared equal")
	}
}

func TestCanonicalRulesetRejectsGarbage(t *testing.T) {
	for _, in := range []string{"", "not json", `{"other":[]}`, `{"nftables":[{"a":1,"b":2}]}`} {
		if _, err := CanonicalRuleset([]byte(in)); err == nil {
			t.Errorf("%q: want error", in)
		}
	}
}
