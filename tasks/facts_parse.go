package tasks

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
)

// maxDump caps how much script output is parsed: a hostile host may send anything.
const maxDump = 4 << 20

// maxSections caps the number of sections kept, for the same reason.
const maxSections = 256

var errNoFactsHeader = errors.New("facts output has no begin marker")

// dump is the facts script's output split into sections. Files are keyed by path,
// everything else by section name.
type dump struct {
	nonce    string
	sections map[string]string // name ("uname", "file /etc/os-release", ...) → content
	complete bool              // the end marker arrived
}

// parseDump splits script output into sections. The first non-empty line must be
// "@@hf:NONCE begin"; only lines with exactly that marker start a new section.
func parseDump(out []byte) (dump, error) {
	if len(out) > maxDump {
		out = out[:maxDump]
	}
	d := dump{sections: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), maxDump+1)
	var (
		prefix  string
		name    string
		body    strings.Builder
		started bool
	)
	flush := func() {
		if name == "" {
			return
		}
		if _, dup := d.sections[name]; !dup && len(d.sections) < maxSections {
			d.sections[name] = strings.TrimSuffix(body.String(), "\n")
		}
		body.Reset()
	}
	for sc.Scan() {
		line := sc.Text()
		if !started {
			if strings.TrimSpace(line) == "" {
				continue
			}
			nonce, ok := strings.CutPrefix(line, "@@hf:")
			nonce, ok2 := strings.CutSuffix(nonce, " begin")
			if !ok || !ok2 || nonce == "" || strings.ContainsAny(nonce, " \t") {
				return dump{}, errNoFactsHeader
			}
			d.nonce, prefix, started = nonce, "@@hf:"+nonce+" ", true
			continue
		}
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			flush()
			name = rest
			if name == "end" {
				d.complete = true
				name = ""
				break
			}
			continue
		}
		if name != "" {
			body.WriteString(line)
			body.WriteByte('\n')
		}
	}
	flush()
	if !started {
		return dump{}, errNoFactsHeader
	}
	// The script prints a newline before every marker; drop that one from each section.
	for k, v := range d.sections {
		d.sections[k] = strings.TrimSuffix(v, "\n")
	}
	return d, nil
}

// file returns the content of a file section and whether the file existed.
func (d dump) file(path string) (string, bool) {
	s, ok := d.sections["file "+path]
	return s, ok
}

// section returns a non-file section, trimmed.
func (d dump) section(name string) string { return strings.TrimSpace(d.sections[name]) }

// lines returns the non-empty, trimmed lines of a section.
func (d dump) lines(name string) []string {
	var out []string
	for _, l := range strings.Split(d.sections[name], "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// exists reports whether the script saw path in its "exists" probe.
func (d dump) exists(path string) bool {
	for _, l := range d.lines("exists") {
		if l == path {
			return true
		}
	}
	return false
}

// which returns the path `command -v name` printed, "" if missing.
func (d dump) which(name string) string {
	for _, l := range d.lines("which") {
		if n, p, ok := strings.Cut(l, " "); ok && n == name {
			return strings.TrimSpace(p)
		}
	}
	return ""
}

// service is one line of the "services" probe.
type service struct{ active, enabled string }

func (d dump) service(name string) service {
	for _, l := range d.lines("services") {
		f := strings.Fields(l)
		if len(f) == 3 && f[0] == name {
			return service{active: f[1], enabled: f[2]}
		}
	}
	return service{active: "unknown", enabled: "unknown"}
}

// running reports whether a process with this comm was seen.
func (d dump) running(comm string) bool {
	for _, l := range d.lines("running") {
		if l == comm {
			return true
		}
	}
	return false
}

// keyValues parses shell-style KEY=value lines (os-release, firewalld.conf, ufw.conf):
// comments skipped, one level of matching quotes removed, backslash escapes inside
// double quotes undone as os-release(5) describes.
func keyValues(s string) map[string]string {
	kv := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		kv[k] = unquote(strings.TrimSpace(v))
	}
	return kv
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return v[1 : len(v)-1]
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if v[i] == '\\' && i+1 < len(v) && strings.IndexByte("\"\\$`", v[i+1]) >= 0 {
				i++
			}
			b.WriteByte(v[i])
		}
		return b.String()
	}
	return v
}
