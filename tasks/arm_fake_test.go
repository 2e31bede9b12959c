package tasks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"strings"
	"sync"

	"github.com/haltfleet/haltfleet/runner"
)

// fakeUnit is an active systemd unit on a fakeHost.
type fakeUnit struct{ ID, ExecStop, ExecStopPost string }

// fakeHost is an in-process Runner modelling just enough of a host for the arm logic:
// a file system, systemd units that honour drop-ins on daemon-reload, and canned
// outputs. It records every command.
type fakeHost struct {
	mu       sync.Mutex
	name     string
	files    map[string]string
	modes    map[string]fs.FileMode
	dirs     map[string]bool
	units    []fakeUnit
	exitrd   string            // findmnt output for /run/initramfs
	sections map[string]string // canned outputs of other sections by name
	selftest string            // output of IDLE --selftest
	cmds     []string
	// respond, when set, answers a command first (ok=false falls through).
	respond func(cmd string) (runner.Result, error, bool)
}

var _ runner.Runner = (*fakeHost)(nil)

func newFakeHost(name string) *fakeHost {
	return &fakeHost{name: name, files: map[string]string{}, modes: map[string]fs.FileMode{},
		dirs: map[string]bool{}, sections: map[string]string{}, selftest: "selftest ok: fake census\nexit=0"}
}

func (h *fakeHost) Name() string { return h.name }
func (h *fakeHost) Close() error { return nil }

func (h *fakeHost) commands() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.cmds...)
}

func (h *fakeHost) Upload(ctx context.Context, path string, content io.Reader, mode fs.FileMode, sudo bool) error {
	b, err := io.ReadAll(content)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cmds = append(h.cmds, "UPLOAD "+path)
	h.files[path], h.modes[path] = string(b), mode
	return nil
}

func (h *fakeHost) Download(ctx context.Context, path string, sudo bool) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.files[path]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return []byte(c), nil
}

var fakeSectionLine = regexp.MustCompile(`^printf '\\n(@@haltfleet-arm-[0-9a-f]+ )%s\\n' (.*)$`)

// unquote undoes runner.Quote for the names the arm scripts use.
func fakeUnquote(s string) string {
	if strings.HasPrefix(s, "'") && strings.HasSuffix(s, "'") {
		return strings.ReplaceAll(s[1:len(s)-1], `'\''`, "'")
	}
	return s
}

func (h *fakeHost) Exec(ctx context.Context, cmd runner.Cmd) (runner.Result, error) {
	h.mu.Lock()
	h.cmds = append(h.cmds, cmd.Command)
	respond := h.respond
	h.mu.Unlock()
	if respond != nil {
		if res, err, ok := respond(cmd.Command); ok {
			return res, err
		}
	}
	if res, err, ok := h.execBatch(ctx, cmd); ok { // Apply's batch script: apply_batch_fake_test.go
		return res, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c := cmd.Command
	if strings.Contains(c, armSectionMark) {
		return runner.Result{Stdout: []byte(h.stateOutput(c))}, nil
	}
	switch {
	case strings.Contains(c, "mount -t tmpfs"):
		h.exitrd = "tmpfs rw,relatime,size=8192k,mode=700"
	case strings.Contains(c, "mount -o remount,exec"):
		h.exitrd = strings.Replace(h.exitrd, "noexec", "exec", 1)
	case c == "systemctl daemon-reload":
		for i, u := range h.units {
			if d, ok := teardownDropin(u.ID); ok {
				if _, ok := h.files[dropinPath(d)]; ok {
					h.units[i].ExecStop, h.units[i].ExecStopPost = "", ""
				}
			}
		}
	case strings.HasPrefix(c, "install -d"):
		h.dirs[fakeUnquote(strings.Fields(c)[len(strings.Fields(c))-1])] = true
	case strings.HasPrefix(c, "sha256sum "):
		p := fakeUnquote(strings.TrimPrefix(c, "sha256sum "))
		return runner.Result{Stdout: []byte(h.sha(p) + "  " + p + "\n")}, nil
	}
	return runner.Result{}, nil
}

func (h *fakeHost) sha(p string) string {
	c, ok := h.files[p]
	if !ok {
		return ""
	}
	s := sha256.Sum256([]byte(c))
	return hex.EncodeToString(s[:])
}

// stateOutput answers an armRead script the way sh would.
func (h *fakeHost) stateOutput(script string) string {
	var b strings.Builder
	for _, l := range strings.Split(script, "\n") {
		m := fakeSectionLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		name := fakeUnquote(m[2])
		fmt.Fprintf(&b, "\n%s%s\n", m[1], name)
		b.WriteString(h.section(name))
	}
	return b.String()
}

func (h *fakeHost) section(name string) string {
	if p, ok := strings.CutPrefix(name, "file "); ok {
		c, ok := h.files[p]
		if !ok {
			return "absent\n"
		}
		return "present\n" + base64.StdEncoding.EncodeToString([]byte(c)) + "\n"
	}
	if p, ok := strings.CutPrefix(name, "idle-sha "); ok {
		if s := h.sha(p); s != "" {
			return s + "  " + p + "\n"
		}
		return ""
	}
	if p, ok := strings.CutPrefix(name, "idle-x "); ok {
		if _, ok := h.files[p]; ok && h.modes[p]&0o111 != 0 {
			return "yes\n"
		}
		return ""
	}
	if p, ok := strings.CutPrefix(name, "idle-selftest "); ok {
		if _, ok := h.files[p]; ok {
			return h.selftest + "\n"
		}
		return ""
	}
	switch name {
	case "exitrd":
		if h.exitrd == "" {
			return ""
		}
		return h.exitrd + "\n"
	case "units":
		var blocks []string
		for _, u := range h.units {
			blocks = append(blocks, fmt.Sprintf("Id=%s\nActiveState=active\nExecStop=%s\nExecStopPost=%s\n", u.ID, u.ExecStop, u.ExecStopPost))
		}
		return strings.Join(blocks, "\n")
	case "runit-dir":
		if h.dirs[armDir(RunitIdle)] {
			return "yes\n"
		}
		return ""
	}
	return h.sections[name]
}

// errDisconnectedAt makes a fakeHost drop the session on commands containing marker.
func errDisconnectedAt(marker string) func(string) (runner.Result, error, bool) {
	return func(c string) (runner.Result, error, bool) {
		if strings.Contains(c, marker) {
			return runner.Result{}, fmt.Errorf("fake: %w", runner.ErrDisconnected), true
		}
		return runner.Result{}, nil, false
	}
}

var errFake = errors.New("fake failure")

// bytesOf is a tiny helper for readers in tests.
func bytesOf(s string) *bytes.Reader { return bytes.NewReader([]byte(s)) }
