package tasks

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/haltfleet/haltfleet/runner"
)

// ApplyEnv is what applying needs beyond the changes themselves.
type ApplyEnv struct {
	// Confirm proves the controller can still reach the host after a ruleset change,
	// over a NEW connection, by cancelling the dead-man timer. Required for rulesets.
	Confirm func(ctx context.Context) error
	// Deadman is how long a new ruleset stays without confirmation before it reverts.
	Deadman time.Duration
	// OnChange, if set, is told about each change after it was applied.
	OnChange func(Change)
}

// Apply makes each change in order and stops at the first failure; the error names the
// host and stage. KindHalt is not applied here: Up halts only after Verify passed.
func Apply(ctx context.Context, r runner.Runner, changes []Change, env ApplyEnv) error {
	for _, ch := range changes {
		if err := applyOne(ctx, r, ch, env); err != nil {
			return err
		}
		if env.OnChange != nil {
			env.OnChange(ch)
		}
	}
	return nil
}

func applyOne(ctx context.Context, r runner.Runner, ch Change, env ApplyEnv) error {
	host, stage := ch.Host, ch.Stage
	if host == "" {
		host = r.Name()
	}
	if stage == "" {
		stage = string(ch.Kind)
	}
	wrap := func(err error) error {
		if err == nil {
			return nil
		}
		// ApplyFile & co. already prefix host and stage; do not say them twice
		if strings.HasPrefix(err.Error(), host+": "+stage+": ") {
			return err
		}
		return fmt.Errorf("%s: %s: %s: %w", host, stage, ch.Summary, err)
	}
	switch ch.Kind {
	case KindFile:
		if arch, ok := strings.CutPrefix(ch.Key, idleKeyPrefix); ok {
			return wrap(uploadIdle(ctx, r, ch.Path, arch))
		}
		return wrap(ApplyFile(ctx, r, ch))
	case KindRemove:
		return wrap(ApplyRemove(ctx, r, ch))
	case KindSysctl:
		return wrap(ApplySysctl(ctx, r, ch))
	case KindRuleset:
		if env.Confirm == nil {
			return wrap(fmt.Errorf("no confirmation path for the dead-man timer"))
		}
		return wrap(ApplyRuleset(ctx, r, ch, env.Confirm, env.Deadman))
	case KindCommand:
		_, err := r.Exec(ctx, runner.Cmd{Command: ch.Command, Sudo: true})
		return wrap(err)
	case KindHalt:
		return nil
	default:
		return wrap(fmt.Errorf("unknown change kind %q", ch.Kind))
	}
}

// uploadIdle writes the embedded idle init for arch, then checks the hash it landed with.
func uploadIdle(ctx context.Context, r runner.Runner, path, arch string) error {
	bin, err := idleBinary(arch)
	if err != nil {
		return err
	}
	if err := r.Upload(ctx, path, bytes.NewReader(bin), 0o755, true); err != nil {
		return err
	}
	res, err := r.Exec(ctx, runner.Cmd{Command: "sha256sum " + runner.Quote(path), Sudo: true})
	if err != nil {
		return err
	}
	got, _, _ := strings.Cut(strings.TrimSpace(string(res.Stdout)), " ")
	if want := idleSHA256(arch); got != want {
		return fmt.Errorf("idle init at %s has sha256 %s, want %s", path, got, want)
	}
	return nil
}
