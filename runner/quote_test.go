package runner

import (
	"os/exec"
	"testing"
)

var quoteSeeds = []string{
	"", "plain", "/usr/sbin/nft", "a b", "it's", "'", "''", `"`, "$HOME", "`id`", "$(id)",
	"a\nb", "\\", "*", "?", "[a]", "~", "#x", "a;b", "a|b", "a&b", "<>", "\t", "é ü",
	"=x", "%d", "-n", "!", "{a,b}", "x=1 y", "\x01\x7f",
}

func TestQuoteRoundTrip(t *testing.T) {
	for _, s := range quoteSeeds {
		got := shPrintf(t, s)
		if got != s {
			t.Errorf("Quote(%q) = %s; sh printed %q", s, Quote(s), got)
		}
	}
}

func TestQuoteKeepsPlainWords(t *testing.T) {
	for in, want := range map[string]string{"abc": "abc", "/a/b.c": "/a/b.c", "": "''", "a b": "'a b'", "a=b": "'a=b'", "it's": `'it'\''s'`} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func FuzzQuote(f *testing.F) {
	for _, s := range quoteSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for i := 0; i < len(s); i++ {
			if s[i] == 0 { // argv cannot carry NUL
				t.Skip()
			}
		}
		if got := shPrintf(t, s); got != s {
			t.Fatalf("Quote(%q) = %s; sh printed %q", s, Quote(s), got)
		}
	})
}

// shPrintf runs sh -c 'printf %s <Quote(s)>' and returns what sh printed.
func shPrintf(t *testing.T, s string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", "printf %s "+Quote(s)).Output()
	if err != nil {
		t.Fatalf("sh: %v", err)
	}
	return string(out)
}
