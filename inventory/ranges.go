package inventory

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

const maxRangeHosts = 1 << 16 // one pattern expanding further is a typo, not a fleet

var errRange = errors.New("bad host range")

// Ansible's parse_address: an optional :port after a host, [IPv6]:port.
var (
	reBracketPort = regexp.MustCompile(`^\[([^\]]+)\]:([0-9]+)$`)
	reHostPort    = regexp.MustCompile(`^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$`)
	reHostname    = regexp.MustCompile(`^(?:[\w-]|\[[a-zA-Z0-9]+:[a-zA-Z0-9]+(?::[0-9]+)?\])+(?:\.(?:[\w-]|\[[a-zA-Z0-9]+:[a-zA-Z0-9]+(?::[0-9]+)?\])+)*$`)
)

// expandHostPattern turns a hosts: key such as "fw[01:20].example.net:2222"
// into host names and a port (0 when none), following Ansible's
// _expand_hostpattern; unlike Ansible, an empty or reversed range is an error.
func expandHostPattern(pattern string) ([]string, int, error) {
	if pattern == "" {
		return nil, 0, errors.New("empty host name")
	}
	if strings.ContainsFunc(pattern, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) }) {
		return nil, 0, errors.New("control or bidi character in host name (it would reach terminals and logs raw)")
	}
	base, port := splitPort(pattern)
	if !strings.Contains(base, "[") {
		return []string{base}, port, nil
	}
	var out []string
	if err := expandRanges(base, &out); err != nil {
		return nil, 0, err
	}
	return out, port, nil
}

func splitPort(pattern string) (string, int) {
	for _, re := range []*regexp.Regexp{reBracketPort, reHostPort} {
		m := re.FindStringSubmatch(pattern)
		if m == nil {
			continue
		}
		port, err := strconv.Atoi(m[2])
		if err != nil || port < 1 || port > 65535 {
			return pattern, 0
		}
		if net.ParseIP(m[1]) != nil || reHostname.MatchString(m[1]) {
			return m[1], port
		}
	}
	return pattern, 0
}

// expandRanges expands the first [a:b(:step)] and recurses for the rest,
// as Ansible's expand_hostname_range does.
func expandRanges(name string, out *[]string) error {
	open := strings.Index(name, "[")
	if open < 0 {
		if len(*out) >= maxRangeHosts {
			return fmt.Errorf("%w: expands to more than %d hosts", errRange, maxRangeHosts)
		}
		*out = append(*out, name)
		return nil
	}
	closing := strings.Index(name[open:], "]")
	if closing < 0 {
		return fmt.Errorf("%w: %q has no closing ]", errRange, name)
	}
	head, spec, tail := name[:open], name[open+1:open+closing], name[open+closing+1:]
	items, err := rangeItems(spec)
	if err != nil {
		return err
	}
	for _, it := range items {
		if err := expandRanges(head+it+tail, out); err != nil {
			return err
		}
	}
	return nil
}

const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

func rangeItems(spec string) ([]string, error) {
	bounds := strings.Split(spec, ":")
	if len(bounds) != 2 && len(bounds) != 3 {
		return nil, fmt.Errorf("%w [%s]: want [begin:end] or [begin:end:step]", errRange, spec)
	}
	beg, end, step := bounds[0], bounds[1], 1
	if len(bounds) == 3 {
		s, err := strconv.Atoi(bounds[2])
		if err != nil || s < 1 {
			return nil, fmt.Errorf("%w [%s]: step must be a positive integer", errRange, spec)
		}
		step = s
	}
	if beg == "" {
		beg = "0"
	}
	if end == "" {
		return nil, fmt.Errorf("%w [%s]: no end value", errRange, spec)
	}
	var items []string
	if len(beg) == 1 && len(end) == 1 && strings.Contains(letters, beg) && strings.Contains(letters, end) {
		i, j := strings.Index(letters, beg), strings.Index(letters, end)
		if i > j {
			return nil, fmt.Errorf("%w [%s]: begin after end", errRange, spec)
		}
		for k := i; k <= j; k += step {
			items = append(items, letters[k:k+1])
		}
		return items, nil
	}
	b, errB := strconv.Atoi(beg)
	e, errE := strconv.Atoi(end)
	if errB != nil || errE != nil || b < 0 || e < 0 {
		return nil, fmt.Errorf("%w [%s]: bounds must be non-negative integers or single letters", errRange, spec)
	}
	width := 0
	if len(beg) > 1 && beg[0] == '0' {
		// A leading zero fixes the width, and Ansible wants both ends written that wide.
		if len(beg) != len(end) {
			return nil, fmt.Errorf("%w [%s]: begin and end must have the same width", errRange, spec)
		}
		width = len(beg)
	}
	if b > e {
		return nil, fmt.Errorf("%w [%s]: begin after end (empty range)", errRange, spec)
	}
	if (e-b)/step >= maxRangeHosts {
		return nil, fmt.Errorf("%w [%s]: expands to more than %d hosts", errRange, spec, maxRangeHosts)
	}
	for i := 0; i <= (e-b)/step; i++ {
		items = append(items, fmt.Sprintf("%0*d", width, b+i*step))
	}
	return items, nil
}
