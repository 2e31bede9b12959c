package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"

	"github.com/haltfleet/haltfleet/runner"
)

// execBatch lets a fakeHost run an Apply batch script the way sh would: it reads the
// payload stream, then each hf_run line in order, writing files into the model and
// sending KindCommand bodies through Exec (so respond and the unit model see them). It
// answers ok=false for any other command.
func (h *fakeHost) execBatch(ctx context.Context, cmd runner.Cmd) (runner.Result, error, bool) {
	first, _, _ := strings.Cut(cmd.Command, "\n")
	rest, ok := strings.CutPrefix(first, "M=HFAPPLY-")
	if !ok {
		return runner.Result{}, nil, false
	}
	mark := "HFAPPLY-" + strings.Fields(rest)[0]
	var stream []byte
	if cmd.Stdin != nil {
		var err error
		if stream, err = io.ReadAll(cmd.Stdin); err != nil {
			return runner.Result{}, err, true
		}
	}
	var stdout, stderr strings.Builder
	fail := func(i, code int, msg string) (runner.Result, error, bool) {
		stderr.WriteString(msg)
		fmt.Fprintf(&stdout, "%s fail %d %d\n", mark, i, code)
		res := runner.Result{Stdout: []byte(stdout.String()), Stderr: []byte(stderr.String()), ExitCode: code}
		return res, &runner.CommandError{Host: h.name, Command: cmd.Command, ExitCode: code, Stderr: msg}, true
	}
	for _, line := range strings.Split(cmd.Command, "\n") {
		w := fakeWords(line)
		switch {
		case len(w) >= 4 && w[0] == "hf_step" && w[2] == "hf_stage":
			i, _ := strconv.Atoi(strings.TrimSuffix(w[1], ";"))
			fmt.Fprintf(&stderr, "\n%s step %d\n", mark, i)
			if n, _ := strconv.Atoi(w[3]); n != len(stream) {
				return fail(i, 1, fmt.Sprintf("payload stream: got %d of %d bytes", len(stream), n))
			}
		case len(w) >= 3 && w[0] == "hf_run":
			i, _ := strconv.Atoi(w[1])
			fmt.Fprintf(&stderr, "\n%s step %d\n", mark, i)
			if code, msg, err := h.batchStep(ctx, w[2], w[3:], stream); err != nil {
				return runner.Result{Stdout: []byte(stdout.String())}, err, true
			} else if code != 0 {
				return fail(i, code, msg)
			}
			fmt.Fprintf(&stdout, "%s done %d\n", mark, i)
		}
	}
	return runner.Result{Stdout: []byte(stdout.String()), Stderr: []byte(stderr.String())}, nil, true
}

// batchStep runs one hf_* function: an exit code and stderr, or an error when the
// session itself failed.
func (h *fakeHost) batchStep(ctx context.Context, fn string, args []string, stream []byte) (int, string, error) {
	switch fn {
	case "hf_file": // path mode offset length [sha256]
		mode, _ := strconv.ParseUint(args[1], 8, 32)
		off, _ := strconv.Atoi(args[2])
		n, _ := strconv.Atoi(args[3])
		if off < 1 || off-1+n > len(stream) {
			return 1, fmt.Sprintf("wrote less than %d bytes to %s", n, args[0]), nil
		}
		content := stream[off-1 : off-1+n]
		if len(args) > 4 {
			if s := sha256.Sum256(content); hex.EncodeToString(s[:]) != args[4] {
				return 1, fmt.Sprintf("idle init at %s has sha256 %x, want %s", args[0], s, args[4]), nil
			}
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		h.cmds = append(h.cmds, "UPLOAD "+args[0])
		h.files[args[0]], h.modes[args[0]] = string(content), fs.FileMode(mode)
	case "hf_remove":
		h.mu.Lock()
		defer h.mu.Unlock()
		h.cmds = append(h.cmds, "rm -f -- "+runner.Quote(args[0]))
		delete(h.files, args[0])
	case "hf_sysctl":
		k, v, _ := strings.Cut(args[0], "=")
		h.mu.Lock()
		defer h.mu.Unlock()
		h.cmds = append(h.cmds, "sysctl -q -w "+runner.Quote(args[0]))
		h.sections["sysctl "+k] = v + "\n"
	case "hf_cmd":
		_, err := h.Exec(ctx, runner.Cmd{Command: args[0], Sudo: true})
		var ce *runner.CommandError
		if errors.As(err, &ce) {
			return ce.ExitCode, ce.Stderr, nil
		}
		return 0, "", err
	default:
		return 127, fn + ": not found", nil
	}
	return 0, "", nil
}

// fakeWords splits a line of sh words as runner.Quote writes them: plain words and
// single-quoted strings with '\” escapes.
func fakeWords(line string) []string {
	var out []string
	var cur strings.Builder
	in, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\'':
			quoted = false
		case quoted:
			cur.WriteByte(c)
		case c == '\'':
			quoted, in = true, true
		case c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
			in = true
		case c == ' ' || c == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}
