package tasks

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/haltfleet/haltfleet/runner"
)

// armSectionMark starts each section of a one-round-trip state read; a fresh nonce
// per read keeps file contents from faking a boundary.
const armSectionMark = "@@haltfleet-arm-"

// armFile is a file as the host has it.
type armFile struct {
	Exists  bool
	Content string
}

// armState is what one round trip learned: named command outputs and files.
type armState struct {
	sections map[string]string
	files    map[string]armFile
}

// armRead is the builder for a state read: every command and file in one script.
type armRead struct {
	mark  string
	names []string
	cmds  map[string]string
	files map[string]bool
}

func newArmRead() *armRead {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return &armRead{mark: armSectionMark + hex.EncodeToString(b) + " ", cmds: map[string]string{}, files: map[string]bool{}}
}

// cmd adds a section whose body is the output of command (stderr dropped).
func (a *armRead) cmd(name, command string) {
	if _, ok := a.cmds[name]; !ok {
		a.names = append(a.names, name)
	}
	a.cmds[name] = command
}

// file adds a file; base64 keeps binary content and a missing final newline intact.
func (a *armRead) file(path string) {
	if a.files[path] {
		return
	}
	a.files[path] = true
	p := runner.Quote(path)
	a.cmd("file "+path, "if [ -e "+p+" ]; then echo present; base64 < "+p+"; else echo absent; fi")
}

// script is the one sh script that prints every section.
func (a *armRead) script() string {
	var b strings.Builder
	for _, n := range a.names {
		fmt.Fprintf(&b, "printf '\\n%s%%s\\n' %s\n{ %s\n} 2>/dev/null\n", a.mark, runner.Quote(n), a.cmds[n])
	}
	b.WriteString("true\n")
	return b.String()
}

// run executes the script in one round trip and parses it.
func (a *armRead) run(ctx context.Context, r runner.Runner) (armState, error) {
	res, err := r.Exec(ctx, runner.Cmd{Command: a.script(), Sudo: true})
	if err != nil {
		return armState{}, err
	}
	return parseArmState(string(res.Stdout), a.mark)
}

func parseArmState(out, mark string) (armState, error) {
	st := armState{sections: map[string]string{}, files: map[string]armFile{}}
	parts := strings.Split(out, "\n"+mark)
	for _, p := range parts[1:] {
		name, body, _ := strings.Cut(p, "\n")
		body = strings.TrimSuffix(body, "\n")
		st.sections[name] = body
		path, isFile := strings.CutPrefix(name, "file ")
		if !isFile {
			continue
		}
		head, b64, _ := strings.Cut(body, "\n")
		switch head {
		case "absent":
			st.files[path] = armFile{}
		case "present":
			raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(b64), ""))
			if err != nil {
				return st, fmt.Errorf("reading %s: %w", path, err)
			}
			st.files[path] = armFile{Exists: true, Content: string(raw)}
		default:
			return st, fmt.Errorf("reading %s: unexpected %q", path, head)
		}
	}
	return st, nil
}

// file returns a file read earlier; ok is false when it was not part of the read.
func (s armState) file(path string) (armFile, bool) {
	f, ok := s.files[path]
	return f, ok
}

// section returns a command's output, trimmed.
func (s armState) section(name string) string {
	return strings.TrimSpace(s.sections[name])
}

// armSortedKeys keeps plans deterministic.
func armSortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
