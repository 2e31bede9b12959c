package tasks

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/haltfleet/haltfleet/runner"
)

// ErrStillUp: SSH kept answering past the bound after the halt was triggered.
var ErrStillUp = errors.New("still answering SSH after the halt")

// haltTrigger is the detached command that halts the host, per init system. It returns
// at once so the session can end cleanly; the halt follows a second later.
func haltTrigger(init string) (string, error) {
	detached := func(cmd string) string {
		return "setsid sh -c " + runner.Quote("sleep 1; "+cmd) + " </dev/null >/dev/null 2>&1 &"
	}
	switch init {
	case InitSystemd:
		return "systemctl --no-block halt", nil
	case InitSysvinit, InitOpenRC:
		return detached("shutdown -h now"), nil
	case InitRunit:
		return detached("init 0"), nil // Debian's /sbin/init is runit-init once runit is PID 1
	}
	return "", fmt.Errorf("%w: %q", ErrNoArmRecipe, init)
}

// Halt creates the arm flag (so the guards and stage-3 hook take effect) and triggers
// the halt detached. A dropped session is what a halt looks like, so it is success.
// Call it only after Verify passed.
func Halt(ctx context.Context, r runner.Runner, f Facts) error {
	host := f.Host
	if host == "" {
		host = r.Name()
	}
	trigger, err := haltTrigger(f.Init)
	if err != nil {
		return fmt.Errorf("%s: halt: %w", host, err)
	}
	cmd := "mkdir -p " + runner.Quote(armDir(ArmFlag)) + " && : > " + runner.Quote(ArmFlag) + " && " + trigger
	_, err = r.Exec(ctx, runner.Cmd{Command: cmd, Sudo: true})
	if err != nil && !errors.Is(err, runner.ErrDisconnected) {
		return fmt.Errorf("%s: halt: %w", host, err)
	}
	return nil
}

// HaltChange is the last step of a plan for a host with Halt set.
func HaltChange(host string, f Facts) Change {
	trigger, _ := haltTrigger(f.Init)
	return Change{Host: host, Stage: "halt", Kind: KindHalt,
		Summary: "create " + ArmFlag + " and halt (" + f.Init + "); only probes can see the host afterwards",
		Command: trigger}
}

// WaitGone polls dial until SSH stops answering (dial returns an error: refused, timed
// out, or no SSH banner) and returns how long that took. A host still answering after
// bound is ErrStillUp.
func WaitGone(ctx context.Context, dial func(ctx context.Context) error, bound time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(bound)
	const every = 250 * time.Millisecond
	for {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := dial(dctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			return time.Since(start), nil
		}
		if ctx.Err() != nil {
			return time.Since(start), ctx.Err()
		}
		if time.Now().After(deadline) {
			return time.Since(start), fmt.Errorf("%w (%s)", ErrStillUp, bound)
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(every):
		}
	}
}

// DialSSH returns a dial for WaitGone that succeeds only when addr (host:port) accepts
// TCP and sends an SSH version banner, so a half-dead sshd counts as gone.
func DialSSH(addr string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetReadDeadline(dl)
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "SSH-") {
			return fmt.Errorf("no SSH banner from %s", addr)
		}
		return nil
	}
}
