package inventory

import (
	"strings"
	"testing"
)

// Host names never reach a remote shell (the fleet-lab test TestFaultsOnFleetLab/shell_
// metacharacters_in_inventory_text proves it on real hosts), so shell metacharacters are
// kept verbatim. Control and bidi characters would reach terminals, recaps and logs raw
// (a newline forges a recap row, ESC rewrites the screen): they are refused, by line.
func TestHostNamesHostile(t *testing.T) {
	kept := []string{
		"fw1;touch /tmp/x", "fw$(id)`id`", `fw'"q`, "-oProxyCommand=touch /tmp/x", "fw|nc -l 9", "fw&&reboot", "fw*?{a,b}",
	}
	for _, name := range kept {
		src := "all:\n  hosts:\n    " + quoteYAML(name) + ":\n      ansible_host: 10.0.0.1\n"
		inv, err := Parse("inv/hosts.yml", []byte(src))
		if err != nil {
			t.Errorf("%q refused: %v", name, err)
			continue
		}
		if len(inv.Hosts) != 1 || inv.Hosts[0].Name != name {
			t.Errorf("%q loaded as %q", name, hostNames(inv.Hosts))
		}
	}
	refused := []string{"fw\x1b[2J", "fw\nfake: line", "fw\x00nul", "fw\u202eevil", "fw\x1b]0;title\x07", "fw\rx", "fw\x7f", "fw\u0085"}
	for _, name := range refused {
		src := "all:\n  hosts:\n    ok1:\n    " + quoteYAML(name) + ":\n"
		_, err := Parse("inv/hosts.yml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), "inv/hosts.yml:4:") || !strings.Contains(err.Error(), "control or bidi character") {
			t.Errorf("%q: error %v, want a refusal at line 4", name, err)
			continue
		}
		if strings.ContainsAny(err.Error(), "\x1b\n\x00\r\x07\x7f") || strings.ContainsRune(err.Error(), '\u202e') {
			t.Errorf("%q: the error itself carries the raw character: %q", name, err)
		}
	}
	// In a range too: the expanded names would carry it.
	if _, err := Parse("inv/hosts.yml", []byte("all:\n  hosts:\n    \"fw[1:3]\\e[2J\":\n")); err == nil {
		t.Errorf("a range with ESC was accepted")
	}
}

// quoteYAML writes s as a double-quoted YAML scalar with escapes.
func quoteYAML(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteString(`\` + string(r))
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u202e':
			b.WriteString(`\u` + hex4(r))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func hex4(r rune) string {
	const digits = "0123456789ABCDEF"
	return string([]byte{digits[r>>12&15], digits[r>>8&15], digits[r>>4&15], digits[r&15]})
}
