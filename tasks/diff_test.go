package tasks

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/haltfleet/haltfleet/internal/testenv"
)

func TestUnifiedDiffGolden(t *testing.T) {
	cases := []struct {
		name, old, new, want string
	}{
		{"equal", "a\nb\n", "a\nb\n", ""},
		{"two hunks and missing final newline",
			"a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\n", "a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl",
			// Output of GNU diff -u for the same inputs.
			"--- old\n+++ new\n@@ -1,5 +1,5 @@\n a\n-b\n+B\n c\n d\n e\n@@ -9,3 +9,4 @@\n i\n j\n k\n+l\n\\ No newline at end of file\n"},
		{"from empty", "", "x\ny\n", "--- old\n+++ new\n@@ -0,0 +1,2 @@\n+x\n+y\n"},
		{"to empty", "x\n", "", "--- old\n+++ new\n@@ -1 +0,0 @@\n-x\n"},
		{"close changes merge", "1\n2\n3\n4\n5\n6\n7\n8\n", "1\nX\n3\n4\n5\n6\n7\nY\n",
			"--- old\n+++ new\n@@ -1,8 +1,8 @@\n 1\n-2\n+X\n 3\n 4\n 5\n 6\n 7\n-8\n+Y\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := UnifiedDiff("old", "new", c.old, c.new); got != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

// applyUnified applies a diff produced by UnifiedDiff to old (a minimal patch(1) for tests).
func applyUnified(t *testing.T, old, diff string) string {
	t.Helper()
	if diff == "" {
		return old
	}
	a := splitLines(old)
	var out []line
	pos := 0
	lines := strings.Split(strings.TrimSuffix(diff, "\n"), "\n")[2:]
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "@@") {
			// "-S,L": S is 1-based, or for an empty range (L=0) the line before it.
			var aStart, aLen int
			if n, _ := fmt.Sscanf(strings.Fields(l)[1], "-%d,%d", &aStart, &aLen); n == 1 {
				aLen = 1
			}
			if aLen > 0 {
				aStart--
			}
			for pos < aStart {
				out = append(out, a[pos])
				pos++
			}
			continue
		}
		noEOL := i+1 < len(lines) && strings.HasPrefix(lines[i+1], `\ `)
		switch l[0] {
		case ' ':
			if a[pos].text != l[1:] {
				t.Fatalf("context mismatch at old line %d: %q vs %q", pos+1, a[pos].text, l[1:])
			}
			out = append(out, a[pos])
			pos++
		case '-':
			if a[pos].text != l[1:] {
				t.Fatalf("delete mismatch at old line %d: %q vs %q", pos+1, a[pos].text, l[1:])
			}
			pos++
		case '+':
			out = append(out, line{l[1:], noEOL})
		}
	}
	out = append(out, a[pos:]...)
	var sb strings.Builder
	for _, l := range out {
		sb.WriteString(l.text)
		if !l.noEOL {
			sb.WriteByte('\n')
		}
	}
	return sb.String()
}

func randomText(r *rand.Rand) string {
	n := r.IntN(25)
	var sb strings.Builder
	for i := 0; i < n; i++ {
		sb.WriteString(strconv.Itoa(r.IntN(6)))
		if i < n-1 || r.IntN(4) > 0 {
			sb.WriteByte('\n')
		}
	}
	return sb.String()
}

func countChanges(diff string) int {
	n := 0
	for _, l := range strings.Split(diff, "\n") {
		if (strings.HasPrefix(l, "+") && !strings.HasPrefix(l, "+++")) || (strings.HasPrefix(l, "-") && !strings.HasPrefix(l, "---")) {
			n++
		}
	}
	return n
}

// TestUnifiedDiffRandom: on random inputs the diff applies back to the new text, and it is
// as short as GNU diff --minimal's (Myers finds a shortest edit script).
func TestUnifiedDiffRandom(t *testing.T) {
	gnu, err := exec.LookPath("diff")
	if err != nil {
		testenv.Missing(t, "GNU diff on PATH")
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		old, new := randomText(r), randomText(r)
		d := UnifiedDiff("old", "new", old, new)
		if got := applyUnified(t, old, d); got != new {
			t.Fatalf("case %d: patch does not apply:\nold=%q\nnew=%q\ndiff:\n%s\ngot=%q", i, old, new, d, got)
		}
		po, pn := filepath.Join(dir, "o"), filepath.Join(dir, "n")
		os.WriteFile(po, []byte(old), 0o600)
		os.WriteFile(pn, []byte(new), 0o600)
		out, _ := exec.Command(gnu, "-u", "--minimal", po, pn).Output()
		if a, b := countChanges(d), countChanges(string(out)); a != b {
			t.Fatalf("case %d: %d changed lines, GNU diff --minimal has %d\nours:\n%s\ngnu:\n%s", i, a, b, d, out)
		}
	}
}

func TestUnifiedDiffHugeFallsBack(t *testing.T) {
	var a, b strings.Builder
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&a, "a%d\n", i)
		fmt.Fprintf(&b, "b%d\n", i)
	}
	d := UnifiedDiff("old", "new", a.String(), b.String())
	if got := applyUnified(t, a.String(), d); got != b.String() {
		t.Fatal("fallback diff does not apply")
	}
	if countChanges(d) != 6000 {
		t.Fatalf("want 6000 changed lines, got %d", countChanges(d))
	}
}
