package tasks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"strings"

	"github.com/haltfleet/haltfleet/runner"
)

// RunDir is where haltfleet keeps its runtime state on a host: the lock, the dead-man timer
// and the rollback ruleset. It lives in /run so nothing survives a reboot. Tests point it
// elsewhere (set it before use; it is read, never written, by this package).
var RunDir = "/run/haltfleet"

// nonce returns a random token for markers and temp names, so that neither ruleset text
// nor a concurrent run can collide with them.
func nonce() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// sectioned is a shell script whose output is split into named sections, so that one round
// trip can return several files and command outputs without any of them being able to fake
// a boundary (the marker carries a fresh nonce).
type sectioned struct {
	marker string
	sb     strings.Builder
}

func newSectioned() *sectioned {
	s := &sectioned{marker: "HFSECTION-" + nonce()}
	// The leading newline puts the marker at a line start whatever came before; parse
	// splits on it together with the marker, so section contents stay byte-exact.
	s.sb.WriteString("mark() { printf '\\n%s %s\\n' " + s.marker + " \"$1\"; }\n")
	return s
}

func (s *sectioned) line(cmd string) { s.sb.WriteString(cmd + "\n") }

func (s *sectioned) script() string { return s.sb.String() }

// parse splits stdout into sections. Output before the first marker is ignored.
func (s *sectioned) parse(stdout []byte) map[string]string {
	out := map[string]string{}
	parts := strings.Split(string(stdout), "\n"+s.marker+" ")
	for _, p := range parts[1:] {
		name, body, _ := strings.Cut(p, "\n")
		out[name] = body
	}
	return out
}

// exec runs the script with sudo and returns its sections, the exit code and stderr.
// A non-zero exit is not an error here: callers map script exit codes to meanings.
func (s *sectioned) exec(ctx context.Context, r runner.Runner, stdin io.Reader) (map[string]string, int, string, error) {
	sec, code, stderr, _, err := s.execAs(ctx, r, s.script(), stdin)
	return sec, code, stderr, err
}

// execAs is exec of command, a script that embeds this one (its output before the first
// section is returned with the rest in stdout).
func (s *sectioned) execAs(ctx context.Context, r runner.Runner, command string, stdin io.Reader) (map[string]string, int, string, []byte, error) {
	res, err := r.Exec(ctx, runner.Cmd{Command: command, Stdin: stdin, Sudo: true})
	var ce *runner.CommandError
	if err != nil && !errors.As(err, &ce) {
		return nil, 0, "", nil, err
	}
	stderr := strings.TrimSpace(runner.Sanitize(res.Stderr[max(0, len(res.Stderr)-4096):])) // remote text: no escapes, no megabytes
	code := res.ExitCode
	if ce != nil {
		code = ce.ExitCode
		if stderr == "" {
			stderr = ce.Stderr
		}
	}
	return s.parse(res.Stdout), code, stderr, res.Stdout, nil
}
