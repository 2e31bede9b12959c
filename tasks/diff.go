package tasks

import (
	"fmt"
	"strings"
)

// diffContext is the number of unchanged lines shown around each change, as diff -u.
const diffContext = 3

// maxDiffEdits bounds the Myers search; beyond it the diff is "replace everything",
// which is still correct, only less precise, and keeps memory bounded on huge inputs.
const maxDiffEdits = 4000

// UnifiedDiff returns a unified diff (diff -u format, 3 lines of context) turning old into
// new, or "" when they are equal. The names label the --- and +++ lines.
func UnifiedDiff(oldName, newName, old, new string) string {
	if old == new {
		return ""
	}
	a, b := splitLines(old), splitLines(new)
	ops := diffLines(a, b)
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", oldName, newName)
	for _, h := range hunks(ops) {
		writeHunk(&sb, ops[h[0]:h[1]])
	}
	return sb.String()
}

// line is one input line; noEOL marks a last line without a trailing newline.
type line struct {
	text  string
	noEOL bool
}

func splitLines(s string) []line {
	if s == "" {
		return nil
	}
	parts := strings.SplitAfter(s, "\n")
	if parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	out := make([]line, len(parts))
	for i, p := range parts {
		out[i] = line{text: strings.TrimSuffix(p, "\n"), noEOL: !strings.HasSuffix(p, "\n")}
	}
	return out
}

// diffOp is one line of the edit script: ' ' kept, '-' deleted from a, '+' inserted from b.
// ai/bi are the 0-based positions of the line in a and b (the next position for the other side).
type diffOp struct {
	kind   byte
	l      line
	ai, bi int
}

// diffLines computes a shortest edit script with Myers' O(ND) algorithm after trimming the
// common prefix and suffix.
func diffLines(a, b []line) []diffOp {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var ops []diffOp
	for i := 0; i < pre; i++ {
		ops = append(ops, diffOp{' ', a[i], i, i})
	}
	ops = append(ops, myers(a[pre:len(a)-suf], b[pre:len(b)-suf], pre, pre)...)
	for i := 0; i < suf; i++ {
		ai, bi := len(a)-suf+i, len(b)-suf+i
		ops = append(ops, diffOp{' ', a[ai], ai, bi})
	}
	return ops
}

func myers(a, b []line, aOff, bOff int) []diffOp {
	n, m := len(a), len(b)
	max := n + m
	if max == 0 {
		return nil
	}
	limit := max
	if limit > maxDiffEdits {
		limit = maxDiffEdits
	}
	v := make([]int, 2*max+2)
	var trace [][]int
	found := false
	for d := 0; d <= limit && !found; d++ {
		trace = append(trace, append([]int(nil), v...))
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[max+k-1] < v[max+k+1]) {
				x = v[max+k+1]
			} else {
				x = v[max+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			v[max+k] = x
			if x >= n && y >= m {
				found = true
				break
			}
		}
	}
	if !found {
		return replaceAll(a, b, aOff, bOff)
	}
	// Walk the trace backwards from (n, m) to (0, 0).
	var rev []diffOp
	x, y := n, m
	for d := len(trace) - 1; d > 0; d-- {
		vd := trace[d]
		k := x - y
		var pk int
		if k == -d || (k != d && vd[max+k-1] < vd[max+k+1]) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := vd[max+pk]
		py := px - pk
		for x > px && y > py {
			x, y = x-1, y-1
			rev = append(rev, diffOp{' ', a[x], aOff + x, bOff + y})
		}
		if x == px {
			y--
			rev = append(rev, diffOp{'+', b[y], aOff + x, bOff + y})
		} else {
			x--
			rev = append(rev, diffOp{'-', a[x], aOff + x, bOff + y})
		}
	}
	for x > 0 && y > 0 {
		x, y = x-1, y-1
		rev = append(rev, diffOp{' ', a[x], aOff + x, bOff + y})
	}
	ops := make([]diffOp, len(rev))
	for i := range rev {
		ops[i] = rev[len(rev)-1-i]
	}
	return ops
}

func replaceAll(a, b []line, aOff, bOff int) []diffOp {
	var ops []diffOp
	for i, l := range a {
		ops = append(ops, diffOp{'-', l, aOff + i, bOff})
	}
	for i, l := range b {
		ops = append(ops, diffOp{'+', l, aOff + len(a), bOff + i})
	}
	return ops
}

// hunks groups the ops into [start, end) ranges: each change with up to diffContext kept
// lines around it, merging changes whose contexts touch.
func hunks(ops []diffOp) [][2]int {
	var out [][2]int
	for i := 0; i < len(ops); i++ {
		if ops[i].kind == ' ' {
			continue
		}
		start := i - diffContext
		if start < 0 {
			start = 0
		}
		end := i + 1
		if n := len(out); n > 0 && start <= out[n-1][1] {
			start = out[n-1][0]
			out = out[:n-1]
		}
		// Extend over following changes separated by at most 2*context kept lines.
		for end < len(ops) {
			j := end
			for j < len(ops) && ops[j].kind == ' ' && j-end < 2*diffContext {
				j++
			}
			if j < len(ops) && ops[j].kind != ' ' {
				end = j + 1
				continue
			}
			break
		}
		stop := end + diffContext
		if stop > len(ops) {
			stop = len(ops)
		}
		out = append(out, [2]int{start, stop})
		i = end - 1
	}
	return out
}

func writeHunk(sb *strings.Builder, ops []diffOp) {
	aStart, bStart := ops[0].ai, ops[0].bi
	aLen, bLen := 0, 0
	for _, op := range ops {
		switch op.kind {
		case ' ':
			aLen++
			bLen++
		case '-':
			aLen++
		case '+':
			bLen++
		}
	}
	fmt.Fprintf(sb, "@@ -%s +%s @@\n", hunkRange(aStart, aLen), hunkRange(bStart, bLen))
	for _, op := range ops {
		sb.WriteByte(op.kind)
		sb.WriteString(op.l.text)
		sb.WriteByte('\n')
		if op.l.noEOL {
			sb.WriteString("\\ No newline at end of file\n")
		}
	}
}

// hunkRange prints a range as diff -u does: 1-based start, length omitted when 1, and an
// empty range starts at the line before it.
func hunkRange(start, n int) string {
	switch n {
	case 0:
		return fmt.Sprintf("%d,0", start)
	case 1:
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}
