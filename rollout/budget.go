package rollout

import (
	"fmt"
	"strconv"
	"strings"
)

// Budget is a failure budget: N failed hosts, or N percent of the hosts counted. The
// rollout stops when failures are strictly greater than the budget, as Ansible's
// max_fail_percentage aborts when failed/batch > percentage: --max-fail 0 stops at the
// first failure, --max-fail 1 tolerates one, --max-fail 50% tolerates 1 of 2 and 0 of 1.
type Budget struct {
	N       int
	Percent bool
}

// ParseBudget parses "N" or "P%" (0 ≤ P ≤ 100).
func ParseBudget(s string) (Budget, error) {
	s = strings.TrimSpace(s)
	b := Budget{}
	num := s
	if strings.HasSuffix(s, "%") {
		b.Percent, num = true, strings.TrimSuffix(s, "%")
	}
	n, err := strconv.Atoi(num)
	if err != nil || num == "" || strings.HasPrefix(num, "+") {
		return b, fmt.Errorf("max-fail %q: want a host count or a percentage", s)
	}
	if n < 0 || b.Percent && n > 100 {
		return b, fmt.Errorf("max-fail %q: out of range", s)
	}
	b.N = n
	return b, nil
}

func (b Budget) String() string {
	if b.Percent {
		return strconv.Itoa(b.N) + "%"
	}
	return strconv.Itoa(b.N)
}

// Allowed is the number of failures out of total that do not exceed the budget:
// failed > P% of total ⇔ 100·failed > P·total ⇔ failed > ⌊P·total/100⌋.
func (b Budget) Allowed(total int) int {
	if b.Percent {
		return b.N * total / 100
	}
	return b.N
}

// Exceeded reports whether failed hosts out of total break the budget (strictly greater).
func (b Budget) Exceeded(failed, total int) bool { return failed > b.Allowed(total) }
