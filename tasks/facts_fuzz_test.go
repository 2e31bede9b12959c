package tasks

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// FuzzParseFacts feeds arbitrary host output to the parser: it must never panic, and
// whatever it returns must be printable and within the caps.
func FuzzParseFacts(f *testing.F) {
	dumps, _ := filepath.Glob(filepath.Join("testdata", "facts", "*", "dump.txt"))
	for _, p := range dumps {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		facts, err := parseFacts(out)
		if err != nil {
			return
		}
		if _, err := json.Marshal(facts); err != nil {
			t.Fatal(err)
		}
		for _, kv := range facts.Summary() {
			if !utf8.ValidString(kv.Value) {
				t.Fatalf("%s is not UTF-8: %q", kv.Key, kv.Value)
			}
			for _, r := range kv.Value {
				if r < 0x20 || (r >= 0x7f && r < 0xa0) || isBidiControl(r) {
					t.Fatalf("%s holds control rune %U: %q", kv.Key, r, kv.Value)
				}
			}
		}
		if len(facts.FiniteAddrs) > maxListLen || len(facts.Network) > maxListLen || len(facts.Warnings) > maxWarnings {
			t.Fatalf("lists over their caps: %d addrs, %d stacks, %d warnings", len(facts.FiniteAddrs), len(facts.Network), len(facts.Warnings))
		}
		for _, s := range []string{facts.Distro.Name, facts.Kernel, facts.PID1, facts.Container, facts.Firewall.Nft} {
			if utf8.RuneCountInString(s) > maxField {
				t.Fatalf("field over %d runes: %q", maxField, s)
			}
		}
	})
}
