package tasks

import (
	"context"
	"time"

	"github.com/haltfleet/haltfleet/runner"
)

// ApplyEnv is what applying needs beyond the changes themselves.
type ApplyEnv struct {
	// Confirm proves the controller can still reach the host after a ruleset change,
	// over a NEW connection, by cancelling the dead-man timer. Required for rulesets.
	Confirm func(ctx context.Context) error
	// Reconnect opens a NEW connection to the host; a rollback is checked over it when
	// the apply's own connection died. Optional.
	Reconnect func(ctx context.Context) (runner.Runner, error)
	// Deadman is how long a new ruleset stays without confirmation before it reverts.
	Deadman time.Duration
	// OnChange, if set, is told about each change after it was applied.
	OnChange func(Change)
}

// Apply makes each change in order and stops at the first failure; the error names the
// host, stage and change. Every change is checked before the host is touched. Consecutive
// non-ruleset changes go to the host as one script (one round trip); a ruleset is its own
// step behind the dead-man timer. KindHalt is not applied here: Up halts only after
// Verify passed.
func Apply(ctx context.Context, r runner.Runner, changes []Change, env ApplyEnv) error {
	for _, ch := range changes {
		if err := checkChange(ch, env); err != nil {
			return changeErr(r, ch, err)
		}
	}
	for i := 0; i < len(changes); {
		if changes[i].Kind == KindRuleset {
			ch := changes[i]
			if err := applyRuleset(ctx, r, ch, env.Confirm, env.Reconnect, env.Deadman); err != nil {
				return changeErr(r, ch, err)
			}
			tellChange(env.OnChange, ch)
			i++
			continue
		}
		j := i
		for j < len(changes) && changes[j].Kind != KindRuleset {
			j++
		}
		if err := applyBatch(ctx, r, changes[i:j], env.OnChange); err != nil {
			return err
		}
		i = j
	}
	return nil
}
