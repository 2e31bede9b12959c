package inventory

import (
	"reflect"
	"strings"
	"testing"
)

func TestExpandHostPattern(t *testing.T) {
	tests := []struct {
		pattern string
		want    []string
		port    int
		err     string
	}{
		{"fw1", []string{"fw1"}, 0, ""},
		{"fw[01:03].example.net", []string{"fw01.example.net", "fw02.example.net", "fw03.example.net"}, 0, ""},
		{"fw[1:3]", []string{"fw1", "fw2", "fw3"}, 0, ""},
		{"fw[8:11]", []string{"fw8", "fw9", "fw10", "fw11"}, 0, ""},
		{"db-[a:c]", []string{"db-a", "db-b", "db-c"}, 0, ""},
		{"x[y:B]", []string{"xy", "xz", "xA", "xB"}, 0, ""},
		{"n[1:10:2]", []string{"n1", "n3", "n5", "n7", "n9"}, 0, ""},
		{"n[a:g:3]", []string{"na", "nd", "ng"}, 0, ""},
		{"z[:2]", []string{"z0", "z1", "z2"}, 0, ""},
		{"r[1:2]-u[08:09]", []string{"r1-u08", "r1-u09", "r2-u08", "r2-u09"}, 0, ""},
		{"web1:2222", []string{"web1"}, 2222, ""},
		{"web[1:2].example.org:22", []string{"web1.example.org", "web2.example.org"}, 22, ""},
		{"[2001:db8::1]:22", []string{"2001:db8::1"}, 22, ""},
		{"2001:db8::1", []string{"2001:db8::1"}, 0, ""},
		{"192.0.2.1:80", []string{"192.0.2.1"}, 80, ""},
		{"host:99999", []string{"host:99999"}, 0, ""},
		{"fw[5:1]", nil, 0, "begin after end"},
		{"fw[c:a]", nil, 0, "begin after end"},
		{"db-[a:]", nil, 0, "no end value"},
		{"fw[1]", nil, 0, "want [begin:end]"},
		{"fw[1:2:3:4]", nil, 0, "want [begin:end]"},
		{"fw[01:100]", nil, 0, "same width"},
		{"fw[1:5:0]", nil, 0, "step must be a positive integer"},
		{"fw[1:5:-1]", nil, 0, "step must be a positive integer"},
		{"fw[x:10]", nil, 0, "bounds must be"},
		{"fw[1:3", nil, 0, "no closing ]"},
		{"fw[0:70000]", nil, 0, "more than 65536 hosts"},
		{"a[0:300]b[0:300]", nil, 0, "more than 65536 hosts"},
		{"", nil, 0, "empty host name"},
	}
	for _, tt := range tests {
		got, port, err := expandHostPattern(tt.pattern)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.pattern, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) || port != tt.port {
			t.Errorf("%q: got %v port %d err %v, want %v port %d", tt.pattern, got, port, err, tt.want, tt.port)
		}
	}
}
