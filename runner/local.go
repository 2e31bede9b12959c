package runner

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"syscall"
	"time"
)

// Local runs commands on the controller with sh -c, with the same semantics as SSH:
// used for probes from the controller and in tests.
type Local struct {
	env execEnv
}

var _ Runner = (*Local)(nil)

// LocalOptions configure a Local runner.
type LocalOptions struct {
	Name           string // default "localhost"
	BecomeUser     string // default root
	BecomePassword func() ([]byte, error)
	Log            func(host, command string)
	MaxOutput      int
}

// NewLocal returns a runner for the controller itself.
func NewLocal(o LocalOptions) *Local {
	if o.Name == "" {
		o.Name = "localhost"
	}
	login := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		login = u.Username
	}
	return &Local{env: execEnv{host: o.Name, login: login, becomeUser: o.BecomeUser,
		become: &becomePassword{ask: o.BecomePassword}, log: o.Log, maxOutput: o.MaxOutput}}
}

func (l *Local) Name() string { return l.env.host }
func (l *Local) Close() error { return nil }

// Privileged reports whether commands run as the become user without sudo.
func (l *Local) Privileged() bool { return !l.env.needSudo(true) }

// Exec runs cmd with sh -c.
func (l *Local) Exec(ctx context.Context, cmd Cmd) (Result, error) {
	return l.env.exec(ctx, localStarter{}, cmd)
}

// Upload writes the file atomically (temp file in the same directory, then rename).
func (l *Local) Upload(ctx context.Context, path string, content io.Reader, mode fs.FileMode, sudo bool) error {
	if l.env.needSudo(sudo) {
		return l.env.uploadShell(ctx, localStarter{}, path, content, uint32(mode.Perm()), true)
	}
	if l.env.log != nil {
		l.env.log(l.env.host, "write "+Quote(path))
	}
	data, err := io.ReadAll(ctxReader{ctx, content})
	if err == nil {
		err = writeAtomic(path, data, mode.Perm())
	}
	if err != nil {
		return hostErr(l.env.host, "upload "+filepath.Base(path), err)
	}
	return nil
}

// Download reads a local file (capped like command output).
func (l *Local) Download(ctx context.Context, path string, sudo bool) ([]byte, error) {
	if l.env.needSudo(sudo) {
		return l.env.downloadShell(ctx, localStarter{}, path, true)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, hostErr(l.env.host, "download", err)
	}
	defer f.Close()
	limit := l.env.maxOutput
	if limit <= 0 {
		limit = DefaultMaxOutput
	}
	b, err := io.ReadAll(io.LimitReader(ctxReader{ctx, f}, int64(limit)+1))
	if err == nil && len(b) > limit {
		err = ErrOutputLimit
	}
	if err != nil {
		return nil, hostErr(l.env.host, "download", err)
	}
	return b, nil
}

type localStarter struct{}

func (localStarter) run(ctx context.Context, command string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	c := exec.Command("sh", "-c", command)
	c.Stdout, c.Stderr = stdout, stderr
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so cancel reaches the whole command
	var w io.WriteCloser
	if stdin != nil {
		var err error
		if w, err = c.StdinPipe(); err != nil {
			return -1, err
		}
	}
	if err := c.Start(); err != nil {
		return -1, err
	}
	if w != nil {
		// Copied by us so Wait does not wait for a stdin the command never reads.
		go func() {
			io.Copy(w, stdin)
			w.Close()
		}()
	}
	stop := context.AfterFunc(ctx, func() {
		syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		time.AfterFunc(5*time.Second, func() { syscall.Kill(-c.Process.Pid, syscall.SIGKILL) })
	})
	defer stop()
	err := c.Wait()
	if ctx.Err() != nil {
		return -1, ctx.Err()
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return exit.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}
