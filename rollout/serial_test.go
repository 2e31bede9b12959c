package rollout

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseSerial(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // steps joined, or "error: substring"
	}{
		{"", "[100%]"},
		{"1", "[1]"},
		{"10", "[10]"},
		{"30%", "[30%]"},
		{"1,10%,50%,100%", "[1 10% 50% 100%]"},
		{" 1 , 30% ", "[1 30%]"},
		{"0", "error: at least one host"},
		{"0%", "error: at least one host"},
		{"-1", "error: at least one host"},
		{"101%", "error: more than 100%"},
		{"abc", "error: not a host count"},
		{"1,,2", "error: not a host count"},
		{"%", "error: not a host count"},
		{"+3", "error: not a host count"},
		{"1.5", "error: not a host count"},
	} {
		got, err := ParseSerial(tc.in)
		if want, ok := strings.CutPrefix(tc.want, "error: "); ok {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("ParseSerial(%q) = %v, %v; want error with %q", tc.in, got, err, want)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != tc.want {
			t.Errorf("ParseSerial(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

// Wave sizes match Ansible's _get_serialized_batches: percentages of all hosts, rounded
// down, at least one; the last step repeats; the last wave takes the rest.
func TestSizesLikeAnsible(t *testing.T) {
	for _, tc := range []struct {
		serial string
		n      int
		want   []int
	}{
		{"1", 3, []int{1, 1, 1}},
		{"2", 5, []int{2, 2, 1}},
		{"30%", 10, []int{3, 3, 3, 1}},
		{"30%", 2, []int{1, 1}},    // 0.6 rounds down to 0, then at least one
		{"50%", 3, []int{1, 1, 1}}, // 1.5 → 1
		{"1,30%,100%", 30, []int{1, 9, 20}},
		{"1,10%,50%,100%", 30, []int{1, 3, 15, 11}},
		{"1,10%,50%,100%", 100, []int{1, 10, 50, 39}},
		{"1,10%,50%,100%", 1, []int{1}},
		{"5,1", 8, []int{5, 1, 1, 1}},
		{"100", 4, []int{4}},
		{"", 7, []int{7}},
		{"3", 0, nil},
	} {
		steps, err := ParseSerial(tc.serial)
		if err != nil {
			t.Fatal(err)
		}
		if got := Sizes(steps, tc.n); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Sizes(%q, %d) = %v, want %v", tc.serial, tc.n, got, tc.want)
		}
	}
}

func TestBudget(t *testing.T) {
	for _, tc := range []struct {
		budget        string
		total, failed int
		exceeded      bool
	}{
		{"0", 10, 0, false},
		{"0", 10, 1, true},
		{"1", 10, 1, false}, // strictly greater: one failure is within --max-fail 1
		{"1", 10, 2, true},
		{"50%", 2, 1, false}, // 1/2 > 0.5 is false, as in Ansible
		{"50%", 1, 1, true},  // 1/1 > 0.5
		{"30%", 3, 1, true},  // 1/3 > 0.3
		{"30%", 10, 3, false},
		{"30%", 10, 4, true},
		{"10%", 9, 1, true}, // ⌊0.9⌋ = 0 failures allowed
		{"10%", 30, 3, false},
		{"10%", 30, 4, true},
		{"100%", 5, 5, false},
		{"0%", 100, 1, true},
	} {
		b, err := ParseBudget(tc.budget)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.Exceeded(tc.failed, tc.total); got != tc.exceeded {
			t.Errorf("budget %s: %d of %d failed: exceeded=%v, want %v", tc.budget, tc.failed, tc.total, got, tc.exceeded)
		}
	}
	for _, bad := range []string{"", "-1", "101%", "x", "1.5%", "+2"} {
		if _, err := ParseBudget(bad); err == nil {
			t.Errorf("ParseBudget(%q) accepted", bad)
		}
	}
}
