package tasks

import (
	"context"
	"fmt"
	"strings"

	"github.com/haltfleet/haltfleet/runner"
)

// LockHolder returns the run ID holding the host lock ("" when free). The CLI uses it to
// take over a lock left by its own killed run, which its journal names.
func LockHolder(ctx context.Context, r runner.Runner) (string, error) {
	cmd := deadmanVars() + `cat "$D/lock/owner" 2>/dev/null || true`
	res, err := r.Exec(ctx, runner.Cmd{Command: cmd, Sudo: true})
	if err != nil {
		return "", fmt.Errorf("%s: lock: %w", r.Name(), err)
	}
	return strings.TrimSpace(string(res.Stdout)), nil
}
