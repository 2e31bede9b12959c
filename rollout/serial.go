// Package rollout plans a staged rollout: waves sized as Ansible's serial, wave groups
// that keep redundant pairs out of the same wave, failure budgets, and the journal that
// lets a rerun resume. It is pure logic plus one file; it never talks to a host.
package rollout

import (
	"fmt"
	"strconv"
	"strings"
)

// Step is one entry of --serial: N hosts, or N percent of all hosts when Percent.
type Step struct {
	N       int
	Percent bool
}

func (s Step) String() string {
	if s.Percent {
		return strconv.Itoa(s.N) + "%"
	}
	return strconv.Itoa(s.N)
}

// ParseSerial parses Ansible's serial: "1", "10", "30%", or a comma list such as
// "1,10%,50%,100%". "" means one wave with every host. Zero or negative sizes are
// refused (Ansible reads 0 as "all at once", which --serial should never mean by accident).
func ParseSerial(s string) ([]Step, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return []Step{{N: 100, Percent: true}}, nil
	}
	var out []Step
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		st := Step{}
		num := f
		if strings.HasSuffix(f, "%") {
			st.Percent, num = true, strings.TrimSuffix(f, "%")
		}
		n, err := strconv.Atoi(num)
		if err != nil || num == "" || strings.HasPrefix(num, "+") {
			return nil, fmt.Errorf("serial %q: %q is not a host count or a percentage", s, f)
		}
		if n < 1 {
			return nil, fmt.Errorf("serial %q: %q: a wave needs at least one host", s, f)
		}
		if st.Percent && n > 100 {
			return nil, fmt.Errorf("serial %q: %q: more than 100%%", s, f)
		}
		st.N = n
		out = append(out, st)
	}
	return out, nil
}

// size is the hosts a step takes out of total, as Ansible's pct_to_int: a percentage is
// of all hosts of the run, rounded down, and at least one.
func (s Step) size(total int) int {
	if !s.Percent {
		return s.N
	}
	if n := s.N * total / 100; n > 0 {
		return n
	}
	return 1
}

// Sizes returns the wave sizes for n hosts: each step in turn, the last one repeating,
// the last wave taking what is left (Ansible's _get_serialized_batches).
func Sizes(steps []Step, n int) []int {
	if len(steps) == 0 {
		steps = []Step{{N: 100, Percent: true}}
	}
	var out []int
	left := n
	for i := 0; left > 0; i++ {
		st := steps[min(i, len(steps)-1)]
		sz := min(st.size(n), left)
		out = append(out, sz)
		left -= sz
	}
	return out
}
