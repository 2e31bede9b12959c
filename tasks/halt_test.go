package tasks

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/runner"
)

func TestHalt(t *testing.T) {
	tests := []struct {
		init    string
		drop    bool
		trigger string
	}{
		{InitSystemd, true, "systemctl --no-block halt"},
		{InitSystemd, false, "systemctl --no-block halt"},
		{InitSysvinit, false, "setsid sh -c 'sleep 1; shutdown -h now' </dev/null >/dev/null 2>&1 &"},
		{InitOpenRC, true, "shutdown -h now"},
		{InitRunit, false, "init 0"},
	}
	for _, tc := range tests {
		t.Run(tc.init, func(t *testing.T) {
			h := newFakeHost("fw1")
			if tc.drop {
				h.respond = errDisconnectedAt("halt")
			}
			if err := Halt(context.Background(), h, Facts{Host: "fw1", Init: tc.init}); err != nil {
				t.Fatalf("Halt: %v", err)
			}
			cmds := h.commands()
			if len(cmds) != 1 {
				t.Fatalf("commands %q", cmds)
			}
			c := cmds[0]
			flag := strings.Index(c, ": > "+ArmFlag)
			trig := strings.Index(c, tc.trigger)
			if flag < 0 || trig < 0 || flag > trig {
				t.Errorf("want the flag created before %q, got %q", tc.trigger, c)
			}
		})
	}
}

func TestHaltRealFailure(t *testing.T) {
	h := newFakeHost("fw1")
	h.respond = func(c string) (runner.Result, error, bool) {
		return runner.Result{}, &runner.CommandError{Host: "fw1", ExitCode: 1, Stderr: "permission denied"}, true
	}
	err := Halt(context.Background(), h, Facts{Host: "fw1", Init: InitSystemd})
	var ce *runner.CommandError
	if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "fw1: halt: ") {
		t.Fatalf("got %v", err)
	}
	if err := Halt(context.Background(), h, Facts{Host: "fw1", Init: InitUnknown}); !errors.Is(err, ErrNoArmRecipe) {
		t.Fatalf("unknown init: %v", err)
	}
}

func TestWaitGone(t *testing.T) {
	var n atomic.Int32
	dial := func(ctx context.Context) error {
		if n.Add(1) < 3 {
			return nil
		}
		return errors.New("connection refused")
	}
	d, err := WaitGone(context.Background(), dial, 5*time.Second)
	if err != nil || n.Load() != 3 {
		t.Fatalf("WaitGone = %v, %v after %d dials", d, err, n.Load())
	}
	_, err = WaitGone(context.Background(), func(context.Context) error { return nil }, 300*time.Millisecond)
	if !errors.Is(err, ErrStillUp) {
		t.Fatalf("still up: %v", err)
	}
}

// TestDialSSH uses real loopback listeners: a banner answers, silence and refusal do not.
func TestDialSSH(t *testing.T) {
	serve := func(banner string) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				if banner != "" {
					c.Write([]byte(banner))
				}
				go func() { time.Sleep(3 * time.Second); c.Close() }()
			}
		}()
		return ln.Addr().String()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := DialSSH(serve("SSH-2.0-OpenSSH_9.2\r\n"))(ctx); err != nil {
		t.Errorf("sshd banner: %v", err)
	}
	if err := DialSSH(serve("HTTP/1.0 200 OK\r\n"))(ctx); err == nil {
		t.Error("non-SSH banner counted as SSH")
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if err := DialSSH(serve(""))(ctx2); err == nil {
		t.Error("silent listener counted as SSH")
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if err := DialSSH(addr)(context.Background()); err == nil {
		t.Error("refused port counted as SSH")
	}
}
