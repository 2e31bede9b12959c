package inventory

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzParse: no input may panic or hang, and whatever loads must be coherent.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/ansible/*.yml")
	files = append(files, "testdata/ini/hosts.ini", "testdata/inigv/hosts", "testdata/mixed/20-edge")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := Parse("fuzz.yml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yml:") {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		for _, h := range inv.Hosts {
			if inv.Host(h.Name) != h || !slices.Contains(h.Groups, "all") {
				t.Fatalf("host %q incoherent: groups %v", h.Name, h.Groups)
			}
			if h.Settings.DeadmanSeconds <= 0 || h.Settings.SSHGoneSeconds <= 0 {
				t.Fatalf("host %q: settings %+v", h.Name, h.Settings)
			}
		}
		if _, err := inv.ListJSON(); err != nil && !strings.Contains(err.Error(), "unsupported value") {
			t.Fatalf("ListJSON: %v", err) // only NaN and Inf have no JSON form
		}
	})
}

// FuzzLimit: any pattern on a fixed inventory returns known hosts, once each, or an error.
func FuzzLimit(f *testing.F) {
	for _, p := range []string{"all", "web*", "~db.*", "web,!web2", "dc1:&web", "web[0:1]", "web[-1]", "nosuch", "[1:2]", "2001:db8::1"} {
		f.Add(p)
	}
	inv, err := Parse("limit.yml", []byte(limitInventory))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		if strings.Contains(pattern, "@") {
			t.Skip("@file reads the file system")
		}
		hosts, err := inv.Limit(pattern)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, h := range hosts {
			if inv.Host(h.Name) != h || seen[h.Name] {
				t.Fatalf("Limit(%q) returned %q twice or unknown", pattern, h.Name)
			}
			seen[h.Name] = true
		}
	})
}

// FuzzINIValue: no INI value may panic or hang the Python-literal reader.
func FuzzINIValue(f *testing.F) {
	for _, s := range append(literalCases, literalErrors...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := iniValue(s)
		if err == nil && v == nil && strings.TrimSpace(strings.SplitN(s, "#", 2)[0]) != "None" && !strings.Contains(s, "None") {
			t.Fatalf("iniValue(%q) = nil without None", s)
		}
		if _, err := shlexSplit(s); err != nil && !strings.Contains(err.Error(), "No ") {
			t.Fatalf("shlexSplit(%q): %v", s, err)
		}
	})
}
