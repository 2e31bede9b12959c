package inventory

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const limitInventory = `all:
  hosts:
    bastion:
  children:
    web:
      hosts:
        web1:
        web2:
        web10:
    db:
      hosts:
        db1:
        web2:
        "2001:db8::1":
    dc1:
      children:
        web:
      hosts:
        fw-a:
`

func TestLimit(t *testing.T) {
	inv := mustParse(t, limitInventory)
	limitFile := filepath.Join(t.TempDir(), "limit.txt")
	if err := os.WriteFile(limitFile, []byte("db1\n\n  web1  \n!web2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		pattern string
		want    []string
		err     string
	}{
		{"all", []string{"bastion", "web1", "web2", "web10", "db1", "2001:db8::1", "fw-a"}, ""},
		{"*", []string{"bastion", "web1", "web2", "web10", "db1", "2001:db8::1", "fw-a"}, ""},
		{"2001:db8::1", []string{"2001:db8::1"}, ""},
		{"web1", []string{"web1"}, ""},
		{"web", []string{"web1", "web2", "web10"}, ""},
		{"dc1", []string{"web1", "web2", "web10", "fw-a"}, ""},
		{"ungrouped", []string{"bastion"}, ""},
		{"db,web1", []string{"web2", "db1", "2001:db8::1", "web1"}, ""},
		{"db:web1", []string{"web2", "db1", "2001:db8::1", "web1"}, ""},
		{" db , web1 ", []string{"web2", "db1", "2001:db8::1", "web1"}, ""},
		{"web*", []string{"web1", "web2", "web10"}, ""},
		{"web?", []string{"web1", "web2"}, ""},
		{"web[1a]", []string{"web1"}, ""},
		{"web[12]", nil, "subscript [12] out of range"}, // a number in brackets is a subscript, as in Ansible
		{"web[!1]*", []string{"web2"}, ""},
		{"~web[0-9]$", []string{"web1", "web2"}, ""},
		{"~(db|fw)", []string{"web2", "db1", "2001:db8::1", "fw-a"}, ""}, // group db, then hosts
		{"~eb", nil, "matches no host or group"},                         // Python's re.match anchors at the start
		{"web,!web2", []string{"web1", "web10"}, ""},
		{"!web2,web", []string{"web1", "web10"}, ""},
		{"!web", []string{"bastion", "db1", "2001:db8::1", "fw-a"}, ""},
		{"web,&db", []string{"web2"}, ""},
		{"dc1:&web:!web10", []string{"web1", "web2"}, ""},
		{"web[0]", []string{"web1"}, ""},
		{"web[-1]", []string{"web10"}, ""},
		{"web[1:]", []string{"web2", "web10"}, ""},
		{"web[0:1]", []string{"web1", "web2"}, ""},
		{"web[5]", nil, "subscript [5] out of range"},
		{"@" + limitFile, []string{"db1", "web1"}, ""},
		{"@" + limitFile + ",fw-a", []string{"db1", "web1", "fw-a"}, ""},
		{"nosuch", nil, `limit "nosuch": matches no host or group`},
		{"web,nosuch,!ghost", nil, `limit "!ghost": matches no host or group`},
		{"~web(", nil, "invalid pattern"},
		{"@/nonexistent/limit", nil, "limit file"},
		{"@" + filepath.Dir(limitFile), nil, "not a regular file"},
		{"", nil, "no host pattern"},
		{",,", nil, "no host pattern"},
		{"web,!", nil, `"!" needs a pattern`},
	}
	for _, tt := range tests {
		got, err := inv.Limit(tt.pattern)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Limit(%q): error %v, want %q", tt.pattern, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(hostNames(got), tt.want) {
			t.Errorf("Limit(%q) = %v, %v; want %v", tt.pattern, hostNames(got), err, tt.want)
		}
	}
}

func TestLimitIPv6GroupName(t *testing.T) {
	inv := mustParse(t, "all:\n  hosts:\n    \"2001:db8::5\":\n    b:\n")
	got, err := inv.Limit("2001:db8::5")
	if err != nil || !reflect.DeepEqual(hostNames(got), []string{"2001:db8::5"}) {
		t.Fatalf("an IPv6 host is one pattern, not a colon list: %v, %v", hostNames(got), err)
	}
}
