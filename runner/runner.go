// Package runner reaches hosts: it runs commands and moves files over SSH (or locally),
// and knows nothing about firewalls. Everything above it talks to a Runner.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// Cmd is one remote command. Command is a POSIX sh command line; build it with Quote,
// never by pasting unquoted text.
type Cmd struct {
	Command string
	Stdin   io.Reader // optional
	Sudo    bool      // run through become (sudo) unless already root
	// Stdout/Stderr, when set, receive the streams as they arrive (Result still holds
	// the capped copies).
	Stdout, Stderr io.Writer
}

// Result of a command that ran to completion (any exit code).
type Result struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// Runner is the narrow primitive every task uses. Implementations are safe for
// concurrent use by several goroutines.
type Runner interface {
	// Name is the inventory host name, for messages.
	Name() string
	// Exec runs cmd and waits. A non-zero exit is returned as *CommandError together
	// with the Result.
	Exec(ctx context.Context, cmd Cmd) (Result, error)
	// Upload writes content to path atomically (temp file + rename) with mode.
	// With sudo the file ends owned by the become user.
	Upload(ctx context.Context, path string, content io.Reader, mode fs.FileMode, sudo bool) error
	// Download reads a remote file.
	Download(ctx context.Context, path string, sudo bool) ([]byte, error)
	Close() error
}

// Sentinel errors; every error a Runner returns wraps at most one of them.
var (
	ErrUnreachable     = errors.New("host unreachable")
	ErrTimeout         = errors.New("timed out")
	ErrAuthFailed      = errors.New("authentication failed")
	ErrHostKeyMismatch = errors.New("host key mismatch")
	ErrHostKeyUnknown  = errors.New("host key unknown")
	ErrSudoPassword    = errors.New("sudo needs a password")
	ErrSudoFailed      = errors.New("sudo failed")
	// ErrDisconnected: the session dropped before an exit status arrived, which is
	// what a remote halt looks like.
	ErrDisconnected = errors.New("disconnected")
)

// CommandError is a command that ran and exited non-zero.
type CommandError struct {
	Host     string
	Command  string // for -v output only; never contains secrets (they go on stdin)
	ExitCode int
	Stderr   string // the tail of stderr, sanitised
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("%s: command exited %d: %s", e.Host, e.ExitCode, e.Stderr)
}
