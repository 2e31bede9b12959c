package runner

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"sync"
)

// becomePassword asks for the sudo password at most once per run and remembers
// whether sudo rejected it, so a wrong password is not retried on every host.
type becomePassword struct {
	ask func() ([]byte, error)

	mu       sync.Mutex
	asked    bool
	password []byte
	err      error
	wrong    bool
}

func (b *becomePassword) get() ([]byte, error) {
	if b == nil {
		return nil, withDetail(ErrSudoPassword, "no password source (use --ask-become-pass)")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wrong {
		return nil, withDetail(ErrSudoFailed, "the become password was rejected")
	}
	if !b.asked {
		b.asked = true
		if b.ask == nil {
			b.err = withDetail(ErrSudoPassword, "no password source (use --ask-become-pass)")
		} else if pw, err := b.ask(); err != nil {
			b.err = withDetail(ErrSudoPassword, "asking for it: %v", err)
		} else {
			b.password = pw
		}
	}
	return b.password, b.err
}

func (b *becomePassword) rejected() {
	if b != nil {
		b.mu.Lock()
		b.wrong = true
		b.mu.Unlock()
	}
}

// becomeWatch wraps one command in sudo. sudo prints a unique prompt on stderr when it
// wants the password; the wrapped shell prints a unique marker on stderr once sudo let
// it run. Stdin is held back until the marker, so the password line goes first and
// the payload after it, and a payload never reaches sudo's password prompt.
type becomeWatch struct {
	env            *execEnv
	prompt, marker string
	out            io.Writer // stderr capture after the marker
	fail           context.CancelCauseFunc

	pre     bytes.Buffer // stderr before the marker, prompts removed
	started bool
	events  chan bool // true: prompt seen, false: command started
	done    chan struct{}
	pr      *io.PipeReader
}

func newBecomeWatch(env *execEnv, out io.Writer, fail context.CancelCauseFunc) *becomeWatch {
	return &becomeWatch{env: env, prompt: "[haltfleet sudo " + nonce() + "] ", marker: "HALTFLEET-BECOME-" + nonce(),
		out: out, fail: fail, events: make(chan bool, 8), done: make(chan struct{})}
}

func nonce() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (w *becomeWatch) command(cmd string) string {
	bu := w.env.becomeUser
	if bu == "" {
		bu = "root"
	}
	inner := "printf '%s\\n' " + w.marker + " >&2; " + cmd
	return "sudo -H -S -p " + Quote(w.prompt) + " -u " + Quote(bu) + " -- sh -c " + Quote(inner)
}

// Write receives stderr; sequential calls from one copier goroutine.
func (w *becomeWatch) Write(p []byte) (int, error) {
	if w.started {
		return w.out.Write(p)
	}
	w.pre.Write(p)
	for {
		b := w.pre.Bytes()
		if i := bytes.Index(b, []byte(w.prompt)); i >= 0 {
			w.pre.Reset()
			w.pre.Write(append(b[:i:i], b[i+len(w.prompt):]...))
			w.signal(true)
			continue
		}
		if i := bytes.Index(b, []byte(w.marker+"\n")); i >= 0 {
			rest := append([]byte(nil), b[i+len(w.marker)+1:]...)
			w.pre.Truncate(i)
			w.started = true
			w.signal(false)
			if len(rest) > 0 {
				w.out.Write(rest)
			}
		}
		return len(p), nil
	}
}

func (w *becomeWatch) signal(prompt bool) {
	select {
	case w.events <- prompt:
	default: // more prompts than we would ever answer: the feeder has already failed
	}
}

// stdin returns the reader the transport sends: the password line when sudo asks,
// then the payload once the command runs.
func (w *becomeWatch) stdin(ctx context.Context, payload io.Reader) io.Reader {
	pr, pw := io.Pipe()
	w.pr = pr
	go func() {
		defer close(w.done)
		prompts := 0
		for {
			select {
			case <-ctx.Done():
				pw.CloseWithError(ctx.Err())
				return
			case prompt, ok := <-w.events:
				if !ok {
					pw.Close()
					return
				}
				if !prompt {
					if payload != nil {
						io.Copy(pw, ctxReader{ctx, payload})
					}
					pw.Close()
					return
				}
				if prompts++; prompts > 1 {
					w.env.become.rejected()
					w.fail(withDetail(ErrSudoFailed, "sudo rejected the become password"))
					pw.Close()
					return
				}
				pass, err := w.env.become.get()
				if err == nil && len(pass) == 0 {
					err = withDetail(ErrSudoPassword, "sudo asks for a password and none was given")
				}
				if err != nil {
					w.fail(err)
					pw.Close()
					return
				}
				line := append(append([]byte(nil), pass...), '\n')
				_, err = pw.Write(line)
				clear(line)
				if err != nil {
					return
				}
			}
		}
	}()
	return pr
}

// finish is called after the command ended: no more stderr will come.
// It also unblocks the stdin feeder if the transport stopped reading.
func (w *becomeWatch) finish() {
	close(w.events)
	if w.pr != nil {
		w.pr.Close()
	}
}
