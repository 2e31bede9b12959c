package inventory

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

const maxLimitFile = 1 << 20

var (
	reColonTerms = regexp.MustCompile(`(?:[^\s:\[\]]|\[[^\]]*\])+`)
	reSubscript  = regexp.MustCompile(`^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$`)
)

// Limit selects hosts with an Ansible host pattern (what --limit takes):
// names, groups, all or *, globs, ~regex, !exclude, &intersect, group[i] and
// group[i:j] subscripts, separated by commas (or colons), and @file with one
// pattern per line. Like Ansible, exclusions and intersections apply after
// the plain patterns, whatever their order. A term that matches no host or
// group is an error, where Ansible only warns.
func (inv *Inventory) Limit(patterns string) ([]*Host, error) {
	terms, err := limitTerms(patterns)
	if err != nil {
		return nil, err
	}
	var plain, and, not []string
	for _, t := range terms {
		switch t[0] {
		case '&':
			and = append(and, t)
		case '!':
			not = append(not, t)
		default:
			plain = append(plain, t)
		}
	}
	if len(plain) == 0 {
		plain = []string{"all"}
	}
	var selected []*Host
	var errs []error
	for _, t := range slices.Concat(plain, and, not) {
		body := t
		if t[0] == '&' || t[0] == '!' {
			body = t[1:]
		}
		matched, err := inv.matchTerm(body)
		if err != nil {
			errs = append(errs, fmt.Errorf("limit %q: %w", t, err))
			continue
		}
		in := make(map[*Host]bool, len(matched))
		for _, h := range matched {
			in[h] = true
		}
		switch t[0] {
		case '&':
			selected = slices.DeleteFunc(selected, func(h *Host) bool { return !in[h] })
		case '!':
			selected = slices.DeleteFunc(selected, func(h *Host) bool { return in[h] })
		default:
			have := make(map[*Host]bool, len(selected))
			for _, h := range selected {
				have[h] = true
			}
			for _, h := range matched {
				if !have[h] {
					have[h] = true
					selected = append(selected, h)
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return selected, nil
}

// limitTerms splits a pattern as Ansible's split_host_pattern does and reads @files.
func limitTerms(patterns string) ([]string, error) {
	var raw []string
	switch {
	case strings.Contains(patterns, ","):
		raw = strings.Split(patterns, ",")
	case isAddress(strings.TrimSpace(patterns)):
		raw = []string{patterns}
	default:
		// Colons separate patterns only when they cannot be part of an address or range.
		raw = reColonTerms.FindAllString(patterns, -1)
	}
	var terms []string
	for _, t := range raw {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if file, ok := strings.CutPrefix(t, "@"); ok {
			lines, err := readLimitFile(file)
			if err != nil {
				return nil, err
			}
			terms = append(terms, lines...)
			continue
		}
		terms = append(terms, t)
	}
	if len(terms) == 0 {
		return nil, fmt.Errorf("limit %q: no host pattern", patterns)
	}
	for _, t := range terms {
		if t == "!" || t == "&" {
			return nil, fmt.Errorf("limit %q: %q needs a pattern after it", patterns, t)
		}
	}
	return terms, nil
}

func isAddress(s string) bool {
	if net.ParseIP(s) != nil || reHostname.MatchString(s) {
		return true
	}
	base, port := splitPort(s)
	return port != 0 && base != s
}

func readLimitFile(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("limit file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("limit file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("limit file %s: not a regular file", name)
	}
	var lines []string
	sc := bufio.NewScanner(io.LimitReader(f, maxLimitFile))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("limit file %s: %w", name, err)
	}
	return lines, nil
}

// matchTerm resolves one pattern without its !/& prefix, as Ansible's
// _match_one_pattern: an exact host name, else matching groups (and hosts
// when nothing matched or the pattern is a glob or regex), then a subscript.
func (inv *Inventory) matchTerm(pattern string) ([]*Host, error) {
	if h := inv.byName[pattern]; h != nil {
		return []*Host{h}, nil
	}
	if pattern == "" {
		return nil, errors.New("empty pattern")
	}
	pattern, sub, hasSub := splitSubscript(pattern)
	match, err := compilePattern(pattern)
	if err != nil {
		return nil, err
	}
	groups := map[string]bool{}
	for name := range inv.Groups {
		if match(name) {
			groups[name] = true
		}
	}
	var out []*Host
	inGroup := map[*Host]bool{}
	for _, h := range inv.Hosts {
		if slices.ContainsFunc(h.Groups, func(g string) bool { return groups[g] }) {
			out = append(out, h)
			inGroup[h] = true
		}
	}
	if len(groups) == 0 || pattern[0] == '~' || strings.ContainsAny(pattern, ".?*[") {
		for _, h := range inv.Hosts {
			if !inGroup[h] && match(h.Name) {
				out = append(out, h)
			}
		}
	}
	if len(out) == 0 && len(groups) == 0 && pattern != "all" {
		return nil, errors.New("matches no host or group")
	}
	if hasSub {
		return sub.apply(out)
	}
	return out, nil
}

type subscript struct{ start, end int } // end < 0: a single index

func splitSubscript(pattern string) (string, subscript, bool) {
	if pattern[0] == '~' {
		return pattern, subscript{}, false
	}
	m := reSubscript.FindStringSubmatch(pattern)
	if m == nil {
		return pattern, subscript{}, false
	}
	if m[2] != "" {
		i, err := strconv.Atoi(m[2])
		if err != nil {
			return pattern, subscript{}, false
		}
		return m[1], subscript{start: i, end: -1}, true
	}
	start, err := strconv.Atoi(m[3])
	if err != nil {
		return pattern, subscript{}, false
	}
	end := -2 // open end: to the last host
	if m[5] != "" {
		if end, err = strconv.Atoi(m[5]); err != nil {
			return pattern, subscript{}, false
		}
	}
	return m[1], subscript{start: start, end: end}, true
}

// apply picks hosts by index; ranges are inclusive, as in Ansible.
func (s subscript) apply(hosts []*Host) ([]*Host, error) {
	n := len(hosts)
	if s.end == -1 {
		i := s.start
		if i < 0 {
			i += n
		}
		if i < 0 || i >= n {
			return nil, fmt.Errorf("subscript [%d] out of range (%d hosts)", s.start, n)
		}
		return hosts[i : i+1], nil
	}
	end := s.end
	if end == -2 || end >= n {
		end = n - 1
	}
	if s.start >= n || s.start > end {
		return nil, fmt.Errorf("subscript [%d:%d] selects no host (%d hosts)", s.start, s.end, n)
	}
	return hosts[s.start : end+1], nil
}

// compilePattern builds a matcher: ~regex anchored at the start (Python's
// re.match), otherwise an fnmatch glob matching the whole name.
func compilePattern(pattern string) (func(string) bool, error) {
	expr := ""
	if re, ok := strings.CutPrefix(pattern, "~"); ok {
		expr = "^(?:" + re + ")"
	} else {
		expr = "^" + globToRegexp(pattern) + "$"
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("invalid pattern: %w", err)
	}
	return re.MatchString, nil
}

// globToRegexp translates fnmatch syntax: *, ?, [seq] and [!seq].
func globToRegexp(glob string) string {
	var b strings.Builder
	b.WriteString("(?s)")
	for i := 0; i < len(glob); i++ {
		switch c := glob[i]; c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			j := i + 1
			if j < len(glob) && glob[j] == '!' {
				j++
			}
			if j < len(glob) && glob[j] == ']' {
				j++
			}
			for j < len(glob) && glob[j] != ']' {
				j++
			}
			if j >= len(glob) {
				b.WriteString(`\[`)
				continue
			}
			class := strings.ReplaceAll(glob[i+1:j], `\`, `\\`)
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			} else if strings.HasPrefix(class, "^") {
				class = `\` + class
			}
			b.WriteString("[" + class + "]")
			i = j
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String()
}
