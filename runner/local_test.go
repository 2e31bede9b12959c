package runner

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLocalExec(t *testing.T) {
	l := NewLocal(LocalOptions{})
	ctx := context.Background()
	res, err := l.Exec(ctx, Cmd{Command: "printf %s " + Quote("it's here") + "; printf err >&2"})
	if err != nil || string(res.Stdout) != "it's here" || string(res.Stderr) != "err" {
		t.Fatalf("got %q %q %v", res.Stdout, res.Stderr, err)
	}
	res, err = l.Exec(ctx, Cmd{Command: "cat", Stdin: strings.NewReader("payload")})
	if err != nil || string(res.Stdout) != "payload" {
		t.Fatalf("stdin: %q %v", res.Stdout, err)
	}
	_, err = l.Exec(ctx, Cmd{Command: "printf '\\033[31mred\\033[0m\\aboom\\n' >&2; exit 3"})
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 3 || ce.Stderr != "redboom" || ce.Host != "localhost" {
		t.Fatalf("want CommandError exit 3 with sanitised stderr, got %#v", err)
	}
}

func TestLocalCancel(t *testing.T) {
	l := NewLocal(LocalOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := l.Exec(ctx, Cmd{Command: "sleep 30; echo late"})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("want deadline exceeded quickly, got %v after %s", err, time.Since(start))
	}
}

func TestLocalOutputCap(t *testing.T) {
	l := NewLocal(LocalOptions{MaxOutput: 1 << 20})
	res, err := l.Exec(context.Background(), Cmd{Command: "yes"})
	if !errors.Is(err, ErrOutputLimit) || len(res.Stdout) != 1<<20 {
		t.Fatalf("want ErrOutputLimit with 1 MiB kept, got %v, %d bytes", err, len(res.Stdout))
	}
}

func TestLocalUploadDownload(t *testing.T) {
	l := NewLocal(LocalOptions{})
	p := filepath.Join(t.TempDir(), "f")
	if err := l.Upload(context.Background(), p, bytes.NewReader([]byte("x\n")), 0o640, false); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}
	b, err := l.Download(context.Background(), p, false)
	if err != nil || string(b) != "x\n" {
		t.Fatalf("download %q %v", b, err)
	}
}

func TestNeedSudo(t *testing.T) {
	for _, tc := range []struct {
		login, become string
		sudo, want    bool
	}{
		{"root", "", true, false}, // already root: no sudo
		{"admin", "", true, true},
		{"admin", "", false, false},
		{"admin", "admin", true, false},
		{"root", "postgres", true, true},
	} {
		e := execEnv{login: tc.login, becomeUser: tc.become}
		if got := e.needSudo(tc.sudo); got != tc.want {
			t.Errorf("login %s become %q sudo %v: got %v", tc.login, tc.become, tc.sudo, got)
		}
	}
}

func TestLocalSudoAsRootRunsDirectly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("checks the root case")
	}
	res, err := NewLocal(LocalOptions{}).Exec(context.Background(), Cmd{Command: "id -u; cat", Stdin: strings.NewReader("in"), Sudo: true})
	if err != nil || string(res.Stdout) != "0\nin" {
		t.Fatalf("%q %v", res.Stdout, err)
	}
}
