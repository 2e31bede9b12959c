package inventory

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestPythonFloats(t *testing.T) {
	// Spellings from Python 3.11's repr(float), which json.dumps uses.
	tests := map[float64]string{3: "3.0", 1.5: "1.5", -2: "-2.0", 0: "0.0", 1e-05: "1e-05", 2.5e-07: "2.5e-07",
		1e16: "1e+16", 123456789012345678: "1.2345678901234568e+17", 0.0001: "0.0001", 1e15: "1000000000000000.0"}
	for f, want := range tests {
		if got := pythonFloats(f); got != json.Number(want) {
			t.Errorf("%v: got %v, want %s", f, got, want)
		}
	}
}

func TestListJSONShape(t *testing.T) {
	inv := mustParse(t, `all:
  vars: {inventory_dir: /x, omit: y, keep: 1}
  children:
    empty:
    web:
      hosts: {w1: , w2: {n: 2.0}}
    bare:
      hosts: {b1: }
`)
	inv.Groups["all"].Vars = map[string]any{} // a host with no vars left is omitted
	inv.Host("b1").Vars = map[string]any{"inventory_file": "/x"}
	out, err := inv.ListJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"children": [
            "ungrouped",
            "empty",
            "web",
            "bare"
        ]`,
		`"w2": {
                "keep": 1,
                "n": 2.0
            }`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
	for _, absent := range []string{`"empty": {`, `"ungrouped": {`, "inventory_dir", "omit", `"b1": {`} {
		if strings.Contains(string(out), absent) {
			t.Errorf("output has %s:\n%s", absent, out)
		}
	}
	inv.Host("w1").Vars["bad"] = math.NaN()
	if _, err := inv.ListJSON(); err == nil {
		t.Error("NaN has no JSON form: want an error")
	}
}
