package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// SSH runs commands on one host over the Pool's shared connection to it.
type SSH struct {
	name   string
	target Target
	conn   *conn
	env    execEnv
}

var _ Runner = (*SSH)(nil)

// conn is one SSH connection, shared by every SSH handle and SFTP transfer for the host.
type conn struct {
	key    string
	via    *conn // the jump host's connection this one tunnels through, nil when direct
	client *ssh.Client
	dead   chan struct{} // closed when the connection ended
	// slots bounds concurrent sessions below sshd's MaxSessions (10), one kept for SFTP.
	slots chan struct{}

	mu   sync.Mutex
	sftp *sftp.Client
}

func (c *conn) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

func (c *conn) sftpClient() (*sftp.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sftp != nil {
		return c.sftp, nil
	}
	sc, err := sftp.NewClient(c.client)
	if err != nil {
		return nil, err
	}
	c.sftp = sc
	return sc, nil
}

func (c *conn) close() error {
	c.mu.Lock()
	if c.sftp != nil {
		c.sftp.Close()
	}
	c.mu.Unlock()
	return c.client.Close()
}

// Name is the inventory host name.
func (s *SSH) Name() string { return s.name }

// Privileged reports whether a command runs as the become user without sudo (the login
// user is that user), so one script may mix reads that need no privilege with ones that do.
func (s *SSH) Privileged() bool { return !s.env.needSudo(true) }

// Target is the resolved connection settings.
func (s *SSH) Target() Target { return s.target }

// Exec runs cmd on the host.
func (s *SSH) Exec(ctx context.Context, cmd Cmd) (Result, error) {
	return s.env.exec(ctx, sshStarter{s.conn}, cmd)
}

// Close releases this handle; the Pool owns (and closes) the shared connection.
func (s *SSH) Close() error { return nil }

type sshStarter struct{ c *conn }

func (st sshStarter) run(ctx context.Context, command string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if st.c.isDead() {
		return -1, withDetail(ErrDisconnected, "connection closed")
	}
	select {
	case st.c.slots <- struct{}{}:
		defer func() { <-st.c.slots }()
	case <-ctx.Done():
		return -1, ctx.Err()
	}
	sess, err := st.c.client.NewSession()
	if err != nil {
		return -1, withDetail(ErrDisconnected, "new session: %v", err)
	}
	defer sess.Close()
	sess.Stdout, sess.Stderr = stdout, stderr
	if stdin != nil {
		// Copied by us, not by the session: Wait must not wait for a stdin the
		// command never reads.
		w, err := sess.StdinPipe()
		if err != nil {
			return -1, withDetail(ErrDisconnected, "stdin: %v", err)
		}
		go func() {
			io.Copy(w, stdin)
			w.Close()
		}()
	}
	if err := sess.Start(command); err != nil {
		return -1, withDetail(ErrDisconnected, "start: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		sess.Signal(ssh.SIGTERM) // sudo relays TERM to the command; KILL it could not
		sess.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		return -1, ctx.Err()
	}
	var exit *ssh.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exit):
		return exit.ExitStatus(), nil
	}
	return -1, withDetail(ErrDisconnected, "%v", errNoExitStatus)
}

// Upload writes content to p atomically with mode: over SFTP as the login user, or
// through sudo so the file belongs to the become user.
func (s *SSH) Upload(ctx context.Context, p string, content io.Reader, mode fs.FileMode, sudo bool) error {
	if s.env.needSudo(sudo) {
		return s.env.uploadShell(ctx, sshStarter{s.conn}, p, content, uint32(mode.Perm()), true)
	}
	if s.env.log != nil {
		s.env.log(s.name, "sftp put "+Quote(p))
	}
	if err := s.sftpPut(ctx, p, content, mode); err != nil {
		return hostErr(s.name, "upload "+p, s.transferErr(err))
	}
	return nil
}

func (s *SSH) sftpPut(ctx context.Context, p string, content io.Reader, mode fs.FileMode) error {
	sc, err := s.conn.sftpClient()
	if err != nil {
		return err
	}
	tmp := path.Join(path.Dir(p), "."+path.Base(p)+".haltfleet-"+nonce())
	f, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, ctxReader{ctx, content})
	if err == nil {
		err = f.Chmod(mode.Perm())
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = sc.PosixRename(tmp, p)
	}
	if err != nil {
		sc.Remove(tmp)
	}
	return err
}

// Download reads a remote file (capped like command output).
func (s *SSH) Download(ctx context.Context, p string, sudo bool) ([]byte, error) {
	if s.env.needSudo(sudo) {
		return s.env.downloadShell(ctx, sshStarter{s.conn}, p, true)
	}
	if s.env.log != nil {
		s.env.log(s.name, "sftp get "+Quote(p))
	}
	b, err := s.sftpGet(ctx, p)
	if err != nil {
		return nil, hostErr(s.name, "download "+p, s.transferErr(err))
	}
	return b, nil
}

func (s *SSH) sftpGet(ctx context.Context, p string) ([]byte, error) {
	sc, err := s.conn.sftpClient()
	if err != nil {
		return nil, err
	}
	f, err := sc.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	limit := s.env.maxOutput
	if limit <= 0 {
		limit = DefaultMaxOutput
	}
	b, err := io.ReadAll(io.LimitReader(ctxReader{ctx, f}, int64(limit)+1))
	if err == nil && len(b) > limit {
		return nil, fmt.Errorf("%w: file larger than %d bytes", ErrOutputLimit, limit)
	}
	return b, err
}

// transferErr names a dropped connection as such, whatever SFTP reported.
func (s *SSH) transferErr(err error) error {
	if s.conn.isDead() {
		return withDetail(ErrDisconnected, "%v", err)
	}
	return err
}
