package runner

import "strings"

// Quote returns s as one POSIX sh word: wrapped in single quotes, with every embedded
// single quote written as close quote, backslash quote, reopen quote. Nothing inside single
// quotes is special to sh, so the result is safe to paste into any command line.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	if isPlainWord(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// isPlainWord reports whether s needs no quoting at all, which keeps -v output readable.
func isPlainWord(s string) bool {
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune("-_./,:@%+", c): // no "=": a leading a=b word is an assignment
		default:
			return false
		}
	}
	return true
}
