package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
)

// starter runs one sh command line and waits. It returns the exit code, or an error
// when no exit status arrived (disconnected, cancelled, could not start). It must not
// wait for stdin to be drained: the remote may exit without reading it.
type starter interface {
	run(ctx context.Context, command string, stdin io.Reader, stdout, stderr io.Writer) (int, error)
}

// execEnv is what Exec needs to know about the host beyond the transport.
type execEnv struct {
	host       string
	login      string // the user we are logged in as
	becomeUser string // default root
	become     *becomePassword
	log        func(host, command string)
	maxOutput  int
}

func (e *execEnv) needSudo(sudo bool) bool {
	bu := e.becomeUser
	if bu == "" {
		bu = "root"
	}
	return sudo && e.login != bu
}

// exec is the one Exec pipeline for every transport: log, become, caps, error types.
func (e *execEnv) exec(ctx context.Context, s starter, cmd Cmd) (Result, error) {
	if e.log != nil {
		e.log(e.host, cmd.Command) // never stdin: it may carry secrets
	}
	limit := e.maxOutput
	if limit <= 0 {
		limit = DefaultMaxOutput
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stdout := &cappedBuffer{limit: limit, w: cmd.Stdout, onOverflow: func() { cancel(ErrOutputLimit) }}
	stderr := &cappedBuffer{limit: limit, w: cmd.Stderr, onOverflow: func() { cancel(ErrOutputLimit) }}
	command, stdin, errw := cmd.Command, cmd.Stdin, io.Writer(stderr)
	var bw *becomeWatch
	if e.needSudo(cmd.Sudo) {
		bw = newBecomeWatch(e, stderr, cancel)
		command, stdin, errw = bw.command(cmd.Command), bw.stdin(runCtx, cmd.Stdin), bw
	}
	code, err := s.run(runCtx, command, stdin, stdout, errw)
	if bw != nil {
		bw.finish()
	}
	res := Result{Stdout: stdout.buf.Bytes(), Stderr: stderr.buf.Bytes(), ExitCode: code}
	switch cause := context.Cause(runCtx); {
	case ctx.Err() != nil:
		return res, hostErr(e.host, "exec", ctx.Err())
	case errors.Is(cause, ErrSudoPassword) || errors.Is(cause, ErrSudoFailed):
		return res, hostErr(e.host, "sudo", cause)
	case cause != nil:
		return res, hostErr(e.host, "exec", cause)
	case err != nil:
		return res, hostErr(e.host, "exec", err)
	}
	if bw != nil && !bw.started {
		return res, hostErr(e.host, "sudo", withDetail(ErrSudoFailed, "exit %d: %s", code, tail(bw.pre.Bytes(), stderrTail)))
	}
	if code == 0 && (stdout.teeErr != nil || stderr.teeErr != nil) {
		return res, hostErr(e.host, "output", errors.Join(stdout.teeErr, stderr.teeErr))
	}
	if code != 0 {
		return res, &CommandError{Host: e.host, Command: cmd.Command, ExitCode: code, Stderr: tail(res.Stderr, stderrTail)}
	}
	return res, nil
}

// uploadShell writes content through sh (used with sudo, where SFTP would write as the
// login user): temp file in the target directory, chmod, rename; removed on failure.
func (e *execEnv) uploadShell(ctx context.Context, s starter, p string, content io.Reader, mode uint32, sudo bool) error {
	dir, base := path.Dir(p), path.Base(p)
	script := fmt.Sprintf(`t=$(mktemp %s) || exit; trap 'rm -f "$t"' EXIT; cat > "$t" && chmod %o "$t" && mv -f "$t" %s && trap - EXIT`,
		Quote(dir+"/."+base+".haltfleet.XXXXXX"), mode&0o7777, Quote(p))
	_, err := e.exec(ctx, s, Cmd{Command: script, Stdin: content, Sudo: sudo})
	return err
}

// downloadShell reads a file through sh (used with sudo).
func (e *execEnv) downloadShell(ctx context.Context, s starter, p string, sudo bool) ([]byte, error) {
	res, err := e.exec(ctx, s, Cmd{Command: "cat -- " + Quote(p), Sudo: sudo})
	if err != nil {
		return nil, err
	}
	return res.Stdout, nil
}

// ctxReader stops a transfer when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

var errNoExitStatus = errors.New("session ended without an exit status")
