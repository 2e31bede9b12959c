package tasks

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Caps on what a host may put into Facts; a hostile host could send anything.
const (
	maxField    = 256 // one string value
	maxListLen  = 64  // entries in any list
	maxWarnings = 32
)

// clean makes a host-supplied string safe to print on a terminal or in a table: ANSI
// escape sequences removed, other control characters (C0, C1, DEL), bidi overrides and
// invalid UTF-8 dropped, whitespace runs folded to one space, length capped in runes.
func clean(s string) string {
	if len(s) > 4*maxField*4 {
		s = s[:4*maxField*4] // bound the work before scanning
	}
	var b strings.Builder
	space := false
	n := 0
	for i := 0; i < len(s) && n < maxField; {
		if s[i] == 0x1b { // ESC: skip the whole sequence
			i = skipEscape(s, i)
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size <= 1:
			continue
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			space = true
			continue
		case unicode.IsControl(r), isBidiControl(r), r == 0x9b:
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
			n++
		}
		space = false
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// skipEscape returns the index after the escape sequence starting at s[i] (ESC):
// CSI (ESC [ ... final byte), OSC/DCS/PM/APC (ESC ] ... BEL or ESC \), or a two-byte escape.
func skipEscape(s string, i int) int {
	i++
	if i >= len(s) {
		return i
	}
	switch s[i] {
	case '[':
		for i++; i < len(s); i++ {
			if s[i] >= 0x40 && s[i] <= 0x7e {
				return i + 1
			}
		}
		return i
	case ']', 'P', '^', '_':
		for i++; i < len(s); i++ {
			if s[i] == 0x07 {
				return i + 1
			}
			if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
		}
		return i
	default:
		return i + 1
	}
}

func isBidiControl(r rune) bool {
	return (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c
}

// cleanList cleans every entry, drops empty ones and caps the length.
func cleanList(in []string) []string {
	var out []string
	for _, s := range in {
		if s = clean(s); s != "" && len(out) < maxListLen {
			out = append(out, s)
		}
	}
	return out
}

// sanitise runs clean over every string in f. It is the last step of parsing, so no
// host-supplied byte reaches a caller unfiltered, whatever a resolver forgot.
func (f *Facts) sanitise() {
	for _, p := range []*string{&f.Host, &f.Kernel, &f.Machine, &f.Arch, &f.Init, &f.InitBase, &f.PID1, &f.Container, &f.Sudo,
		&f.Distro.ID, &f.Distro.VersionID, &f.Distro.Name, &f.Distro.Source,
		&f.Firewall.Backend, &f.Firewall.Nft, &f.Firewall.Iptables, &f.Firewall.FirewalldBackend} {
		*p = clean(*p)
	}
	f.Distro.IDLike = cleanList(f.Distro.IDLike)
	f.Network = cleanList(f.Network)
	if len(f.FiniteAddrs) > maxListLen {
		f.FiniteAddrs = f.FiniteAddrs[:maxListLen]
	}
	for i := range f.FiniteAddrs {
		f.FiniteAddrs[i].Iface = clean(f.FiniteAddrs[i].Iface)
		f.FiniteAddrs[i].CIDR = clean(f.FiniteAddrs[i].CIDR)
	}
	f.Warnings = cleanList(f.Warnings)
	if len(f.Warnings) > maxWarnings {
		f.Warnings = f.Warnings[:maxWarnings]
	}
}
