package tasks

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/haltfleet/haltfleet/runner"
)

func TestApplyDispatchAndStop(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost("fw1")
	h.respond = func(c string) (runner.Result, error, bool) {
		if strings.Contains(c, "boom") {
			return runner.Result{ExitCode: 3}, &runner.CommandError{Host: "fw1", Command: c, ExitCode: 3, Stderr: "boom failed"}, true
		}
		return runner.Result{}, nil, false
	}
	changes := []Change{
		{Host: "fw1", Stage: "arm", Kind: KindFile, Path: "/etc/default/halt", New: "X=1\n", Mode: 0o644, Summary: "file"},
		{Host: "fw1", Stage: "arm", Kind: KindFile, Path: RunitIdle, Key: idleKeyPrefix + "amd64", Mode: 0o755, Summary: "idle"},
		{Host: "fw1", Stage: "arm", Kind: KindRemove, Path: "/run/systemd/system/x.d/haltfleet.conf", Summary: "remove"},
		{Host: "fw1", Stage: "arm", Kind: KindCommand, Command: "systemctl daemon-reload", Summary: "reload"},
		{Host: "fw1", Stage: "halt", Kind: KindHalt, Command: "systemctl --no-block halt", Summary: "halt is not Apply's"},
		{Host: "fw1", Stage: "arm", Kind: KindCommand, Command: "boom", Summary: "fails"},
		{Host: "fw1", Stage: "arm", Kind: KindCommand, Command: "never-run", Summary: "after the failure"},
	}
	var applied []string
	err := Apply(ctx, h, changes, ApplyEnv{OnChange: func(c Change) { applied = append(applied, c.Summary) }})
	if err == nil {
		t.Fatal("no error from a failing change")
	}
	var ce *runner.CommandError
	if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "fw1: arm: fails: ") {
		t.Errorf("error lacks host/stage or does not unwrap: %v", err)
	}
	if got := strings.Join(applied, ","); got != "file,idle,remove,reload,halt is not Apply's" {
		t.Errorf("applied %s", got)
	}
	bin, _ := idleBinary("amd64")
	if h.files[RunitIdle] != string(bin) || h.modes[RunitIdle] != 0o755 {
		t.Error("idle binary not uploaded byte-exact with mode 0755")
	}
	if h.files["/etc/default/halt"] != "X=1\n" {
		t.Error("file change not written")
	}
	for _, c := range h.commands() {
		if strings.Contains(c, "never-run") || strings.Contains(c, "no-block halt") {
			t.Errorf("ran %q", c)
		}
	}
}

func TestApplyRulesetNeedsConfirm(t *testing.T) {
	h := newFakeHost("fw1")
	err := Apply(context.Background(), h, []Change{{Host: "fw1", Stage: "ruleset", Kind: KindRuleset, Summary: "ruleset"}}, ApplyEnv{})
	if err == nil || !strings.Contains(err.Error(), "dead-man") {
		t.Fatalf("got %v", err)
	}
	if len(h.commands()) != 0 {
		t.Errorf("touched the host: %q", h.commands())
	}
}

func TestApplyIdleHashMismatch(t *testing.T) {
	h := newFakeHost("fw1")
	h.respond = func(c string) (runner.Result, error, bool) {
		if strings.HasPrefix(c, "sha256sum") {
			return runner.Result{Stdout: []byte("0000  x\n")}, nil, true
		}
		return runner.Result{}, nil, false
	}
	err := Apply(context.Background(), h, []Change{{Host: "fw1", Stage: "arm", Kind: KindFile, Path: ExitrdShutdown, Key: idleKeyPrefix + "amd64", Summary: "idle"}}, ApplyEnv{})
	if err == nil || !strings.Contains(err.Error(), "sha256 0000") {
		t.Fatalf("got %v", err)
	}
}
