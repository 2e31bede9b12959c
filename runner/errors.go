package runner

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrOutputLimit: a command wrote more than the per-stream cap; it was stopped so an
// endless remote output cannot eat the controller's memory.
var ErrOutputLimit = errors.New("output limit exceeded")

// DefaultMaxOutput caps each captured stream (stdout, stderr) of one command.
const DefaultMaxOutput = 16 << 20

// stderrTail is how much of stderr a CommandError keeps.
const stderrTail = 2 << 10

// hostErr wraps err with host and stage, the shape every runner error has.
func hostErr(host, stage string, err error) error {
	return fmt.Errorf("%s: %s: %w", host, stage, err)
}

// sentinelErr carries a sentinel plus a detail without printing the sentinel twice.
type sentinelErr struct {
	sentinel error
	detail   string
}

func (e *sentinelErr) Error() string { return e.sentinel.Error() + ": " + e.detail }
func (e *sentinelErr) Unwrap() error { return e.sentinel }

func withDetail(sentinel error, format string, args ...any) error {
	return &sentinelErr{sentinel: sentinel, detail: fmt.Sprintf(format, args...)}
}

// Sanitize makes remote text safe to print on a terminal: ANSI escape sequences and
// control characters other than newline and tab are dropped, invalid UTF-8 replaced.
func Sanitize(b []byte) string {
	var out strings.Builder
	for i := 0; i < len(b); {
		c := b[i]
		if c == 0x1b { // ESC: skip a CSI (ESC [ ... final) or OSC (ESC ] ... BEL/ST) sequence
			i = skipEscape(b, i)
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		i += size
		switch {
		case r == '\n' || r == '\t':
			out.WriteRune(r)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
		case r == utf8.RuneError && size == 1:
			out.WriteRune(utf8.RuneError)
		default:
			out.WriteRune(r)
		}
	}
	return out.String()
}

// skipEscape returns the index just past the escape sequence starting at b[i] == ESC.
func skipEscape(b []byte, i int) int {
	i++
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '[':
		for i++; i < len(b); i++ {
			if b[i] >= 0x40 && b[i] <= 0x7e {
				return i + 1
			}
		}
		return i
	case ']':
		for i++; i < len(b); i++ {
			if b[i] == 0x07 {
				return i + 1
			}
			if b[i] == 0x1b && i+1 < len(b) && b[i+1] == '\\' {
				return i + 2
			}
		}
		return i
	default:
		return i + 1 // two-byte sequence such as ESC c
	}
}

// tail returns the sanitised last n bytes of b, trimmed of surrounding blank space.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(Sanitize(b))
}

// cappedBuffer keeps up to limit bytes, optionally tees them to w, and calls onOverflow
// once when more arrive. It keeps accepting (and dropping) input so the sender drains
// instead of blocking on a full window.
type cappedBuffer struct {
	buf        bytes.Buffer
	limit      int
	w          interface{ Write([]byte) (int, error) }
	overflowed bool
	onOverflow func()
	teeErr     error // the tee failed; capture goes on so the remote is not blocked
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if c.overflowed {
		return n, nil
	}
	if room := c.limit - c.buf.Len(); len(p) > room {
		p = p[:room]
		c.overflowed = true
	}
	c.buf.Write(p)
	if c.w != nil && c.teeErr == nil {
		if _, err := c.w.Write(p); err != nil {
			c.teeErr = err
		}
	}
	if c.overflowed && c.onOverflow != nil {
		c.onOverflow()
	}
	return n, nil
}
