package tasks

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzCanonicalRuleset feeds arbitrary text where `nft -j list ruleset` output belongs (a
// hostile or broken host): the canonicaliser must never panic, must give the same answer
// twice, must be a fixpoint (its own output, read back, canonicalises to itself), and must
// never keep a handle, a counter's state or an element expiry. Seeds: the real captures in
// testdata/ruleset plus the hostile shapes in testdata/fuzz/FuzzCanonicalRuleset.
func FuzzCanonicalRuleset(f *testing.F) {
	captures, _ := filepath.Glob(filepath.Join("testdata", "ruleset", "*.json"))
	for _, p := range captures {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		lines, err := CanonicalRuleset(in)
		if err != nil {
			return
		}
		again, err := CanonicalRuleset(in)
		if err != nil || !slices.Equal(lines, again) {
			t.Fatalf("not deterministic: %v\n%q\n%q", err, lines, again)
		}
		for _, l := range lines {
			var obj map[string]any
			if err := json.Unmarshal([]byte(l), &obj); err != nil || len(obj) != 1 {
				t.Fatalf("canonical line is not one JSON object with one key: %v %q", err, l)
			}
			if _, meta := obj["metainfo"]; meta {
				t.Fatalf("metainfo kept: %q", l)
			}
			for _, body := range obj {
				if leaked := stateLeft(body); leaked != "" {
					t.Fatalf("%s kept in %q", leaked, l)
				}
			}
		}
		wrapped := []byte(`{"nftables":[` + strings.Join(lines, ",") + `]}`)
		fix, err := CanonicalRuleset(wrapped)
		if err != nil {
			t.Fatalf("its own output does not read back: %v\n%s", err, wrapped)
		}
		if !slices.Equal(lines, fix) {
			t.Fatalf("not a fixpoint:\n%q\n%q", lines, fix)
		}
	})
}

// stateLeft names a handle, expiry or counter state anywhere in v ("" when none).
func stateLeft(v any) string {
	switch t := v.(type) {
	case map[string]any:
		for _, k := range []string{"handle", "expires"} {
			if _, ok := t[k]; ok {
				return k
			}
		}
		if c, ok := t["counter"].(map[string]any); ok {
			if _, ok := c["packets"]; ok {
				return "counter packets"
			}
		}
		for _, x := range t {
			if s := stateLeft(x); s != "" {
				return s
			}
		}
	case []any:
		for _, x := range t {
			if s := stateLeft(x); s != "" {
				return s
			}
		}
	}
	return ""
}
