package tasks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/haltfleet/haltfleet/runner"
)

// batchFuncs is the fixed part of a batch script. Payloads arrive on stdin, concatenated;
// the script first copies all of stdin to a staging file ($S) and checks its size, because
// a second `head -c` on a pipe loses bytes with BusyBox (its stdio over-reads), while
// `tail -c +OFF FILE | head -c LEN` is exact on coreutils and BusyBox alike, and a short
// stream is caught before anything changes. Every body writes its stdout to stderr, so
// stdout carries only the nonce'd done/fail markers; a marker on stderr before each step
// lets Go report the failing step's own stderr.
const batchFuncs = `S= t=
trap '[ -z "$t" ] || rm -f -- "$t"; [ -z "$S" ] || rm -f -- "$S"' EXIT
hf_fail() { printf '%s fail %s %s\n' "$M" "$1" "$2"; exit "$2"; }
hf_step() { printf '\n%s step %s\n' "$M" "$1" >&2; }
hf_run() {
	hf_i=$1; shift
	hf_step "$hf_i"
	"$@" >&2
	hf_rc=$?
	[ "$hf_rc" -eq 0 ] || hf_fail "$hf_i" "$hf_rc"
	printf '%s done %s\n' "$M" "$hf_i"
}
hf_stage() {
	mkdir -p -- "$D" && chmod 700 "$D" && S=$(mktemp "$D/apply.XXXXXX") && cat > "$S" || return
	n=$(wc -c < "$S") || return
	[ $n -eq "$1" ] || { echo "payload stream: got $n of $1 bytes" >&2; return 1; }
}
hf_file() {
	t=$(mktemp "${1%/*}/.${1##*/}.haltfleet.XXXXXX") </dev/null || return
	tail -c +"$3" "$S" | head -c "$4" > "$t" || return
	n=$(wc -c < "$t") || return
	[ $n -eq "$4" ] || { echo "wrote $n of $4 bytes to $1" >&2; return 1; }
	if [ -n "${5-}" ]; then
		h=$(sha256sum < "$t") || return
		[ "${h%% *}" = "$5" ] || { echo "idle init at $1 has sha256 ${h%% *}, want $5" >&2; return 1; }
	fi
	chmod "$2" "$t" </dev/null && mv -f -- "$t" "$1" </dev/null && t=
}
hf_remove() { rm -f -- "$1" </dev/null; }
hf_sysctl() { sysctl -q -w "$1" </dev/null; }
hf_cmd() { sh -c "$1" </dev/null; }
`

// batch is one sudo shell script applying consecutive non-ruleset changes, in order.
type batch struct {
	mark     string
	script   strings.Builder
	payloads []io.Reader
	size     int64
	commands map[int]string // step index -> what it runs, for CommandError
	first    int            // the first step: a staging failure is reported as its failure
}

// newBatch builds the script for chs, which checkChange already accepted.
func newBatch(chs []Change) (*batch, error) {
	b := &batch{mark: "HFAPPLY-" + nonce(), commands: map[int]string{}, first: -1}
	var steps strings.Builder
	for i, ch := range chs {
		q := runner.Quote
		switch ch.Kind {
		case KindFile:
			content, mode, sum := []byte(ch.New), ch.Mode.Perm(), ""
			if ch.Mode == 0 {
				mode = 0o644
			}
			if arch, ok := strings.CutPrefix(ch.Key, idleKeyPrefix); ok {
				bin, err := idleBinary(arch)
				if err != nil {
					return nil, err
				}
				content, mode, sum = bin, 0o755, idleSHA256(arch)
			}
			// tail -c +OFF counts from 1
			fmt.Fprintf(&steps, "hf_run %d hf_file %s %o %d %d", i, q(ch.Path), mode, b.size+1, len(content))
			if sum != "" {
				steps.WriteString(" " + q(sum))
			}
			steps.WriteString("\n")
			b.payloads = append(b.payloads, bytes.NewReader(content))
			b.size += int64(len(content))
			b.commands[i] = "write " + q(ch.Path)
		case KindRemove:
			b.commands[i] = "rm -f -- " + q(ch.Path)
			fmt.Fprintf(&steps, "hf_run %d hf_remove %s\n", i, q(ch.Path))
		case KindSysctl:
			b.commands[i] = "sysctl -q -w " + q(ch.Key+"="+ch.New)
			fmt.Fprintf(&steps, "hf_run %d hf_sysctl %s\n", i, q(ch.Key+"="+ch.New))
		case KindCommand:
			b.commands[i] = ch.Command
			fmt.Fprintf(&steps, "hf_run %d hf_cmd %s\n", i, q(ch.Command))
		case KindHalt: // not Apply's: Up halts after Verify
			continue
		}
		if b.first < 0 {
			b.first = i
		}
	}
	fmt.Fprintf(&b.script, "M=%s D=%s\n", b.mark, runner.Quote(RunDir))
	b.script.WriteString(batchFuncs)
	if len(b.payloads) > 0 {
		// Staging failures belong to the first change: nothing has changed yet.
		fmt.Fprintf(&b.script, "hf_step %d; hf_stage %d || hf_fail %d $?\n", b.first, b.size, b.first)
	}
	b.script.WriteString(steps.String())
	return b, nil
}

// stdin is the payload stream, or nil when no step reads one.
func (b *batch) stdin() io.Reader {
	if len(b.payloads) == 0 {
		return nil
	}
	return io.MultiReader(b.payloads...)
}

// outcome is what the script's stdout says: which steps finished and which one failed.
type outcome struct {
	done     map[int]bool
	failed   int // -1: no fail marker
	failCode int
}

func (b *batch) parse(stdout []byte) outcome {
	o := outcome{done: map[int]bool{}, failed: -1}
	for _, line := range strings.Split(string(stdout), "\n") {
		rest, ok := strings.CutPrefix(line, b.mark+" ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		switch {
		case len(f) == 2 && f[0] == "done":
			if i, err := strconv.Atoi(f[1]); err == nil {
				o.done[i] = true
			}
		case len(f) == 3 && f[0] == "fail":
			i, err1 := strconv.Atoi(f[1])
			code, err2 := strconv.Atoi(f[2])
			if err1 == nil && err2 == nil && o.failed < 0 {
				o.failed, o.failCode = i, code
			}
		}
	}
	return o
}

// stepStderr is what step i wrote to stderr (sanitised, the last 4 KiB).
func (b *batch) stepStderr(stderr []byte, i int) string {
	m := []byte("\n" + b.mark + " step " + strconv.Itoa(i) + "\n")
	k := bytes.LastIndex(stderr, m)
	if k < 0 {
		return ""
	}
	out := stderr[k+len(m):]
	return strings.TrimSpace(runner.Sanitize(out[max(0, len(out)-4096):]))
}

// applyBatch runs chs (no rulesets) as one script and tells onChange about each change
// that was made, in order. The error names the first change that was not made.
func applyBatch(ctx context.Context, r runner.Runner, chs []Change, onChange func(Change)) error {
	b, err := newBatch(chs)
	if err != nil {
		return changeErr(r, chs[0], err)
	}
	if len(b.commands) == 0 { // halts only
		for _, ch := range chs {
			tellChange(onChange, ch)
		}
		return nil
	}
	res, err := r.Exec(ctx, runner.Cmd{Command: b.script.String(), Stdin: b.stdin(), Sudo: true})
	o := b.parse(res.Stdout)
	n := 0
	for n < len(chs) && (chs[n].Kind == KindHalt || o.done[n]) {
		tellChange(onChange, chs[n])
		n++
	}
	if n == len(chs) {
		return nil // every change was made, whatever happened to the session afterwards
	}
	ch := chs[n]
	var ce *runner.CommandError
	switch {
	case o.failed == n:
		stderr := b.stepStderr(res.Stderr, n)
		if stderr == "" && errors.As(err, &ce) {
			stderr = ce.Stderr
		}
		return changeErr(r, ch, &runner.CommandError{Host: r.Name(), Command: b.commands[n], ExitCode: o.failCode, Stderr: stderr})
	case err != nil:
		return changeErr(r, ch, err) // transport, sudo, timeout, or the script itself broke
	default:
		return changeErr(r, ch, fmt.Errorf("the apply script exited 0 before this change (%d of %d made)", n, len(chs)))
	}
}

func tellChange(onChange func(Change), ch Change) {
	if onChange != nil {
		onChange(ch)
	}
}

// changeErr prefixes err with the change's host, stage and summary.
func changeErr(r runner.Runner, ch Change, err error) error {
	host, stage := ch.Host, ch.Stage
	if host == "" {
		host = r.Name()
	}
	if stage == "" {
		stage = string(ch.Kind)
	}
	// ApplyRuleset & co. already prefix host and stage; do not say them twice
	if strings.HasPrefix(err.Error(), host+": "+stage+": ") {
		return err
	}
	return fmt.Errorf("%s: %s: %s: %w", host, stage, ch.Summary, err)
}

// checkChange refuses a change before anything on the host is touched.
func checkChange(ch Change, env ApplyEnv) error {
	switch ch.Kind {
	case KindFile:
		if err := checkManagedPath(ch.Path); err != nil {
			return err
		}
		if arch, ok := strings.CutPrefix(ch.Key, idleKeyPrefix); ok {
			if _, err := idleBinary(arch); err != nil {
				return err
			}
		}
	case KindRemove:
		return checkManagedPath(ch.Path)
	case KindSysctl:
		return ValidateSysctl(ch.Key, ch.New)
	case KindRuleset:
		if env.Confirm == nil {
			return fmt.Errorf("no confirmation path for the dead-man timer")
		}
	case KindCommand, KindHalt:
	default:
		return fmt.Errorf("unknown change kind %q", ch.Kind)
	}
	return nil
}
