package tasks

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/haltfleet/haltfleet/inventory"
	"github.com/haltfleet/haltfleet/runner"
)

// ErrRulesetInvalid: nft refused the desired ruleset (nft -c, or loading it in the
// throwaway namespace). Nothing on the host was changed.
var ErrRulesetInvalid = errors.New("ruleset rejected by nft")

// Exit codes of the ruleset scripts, so Go can tell which step failed.
const (
	exitNoTools  = 89 // nft or unshare missing
	exitRunDir   = 90 // cannot create RunDir
	exitUpload   = 91 // cannot write the temp file
	exitCheck    = 92 // nft -c failed: the ruleset is invalid
	exitCanon    = 93 // loading it in a throwaway namespace failed
	exitListLive = 94 // nft list ruleset failed
	exitPending  = 95 // a dead-man timer is still pending
	exitRollback = 96 // the current ruleset cannot be saved for rollback
	exitApply    = 97 // nft -f failed (atomic: nothing changed)
	exitTimer    = 98 // the dead-man timer did not start
	exitFired    = 99 // the timer fired before or during the apply: the previous ruleset is live
)

// RenderRuleset is the host's desired ruleset: its haltfleet_ruleset file, rendered as a
// template when haltfleet_ruleset_template is set (inventory does both). An empty result
// is refused: applying it would remove every rule.
func RenderRuleset(h *inventory.Host) (string, error) {
	b, err := h.RulesetText()
	if err != nil {
		return "", err
	}
	if !hasStatements(string(b)) {
		return "", fmt.Errorf("%s: ruleset %s renders to an empty ruleset (that would remove every rule)", h.Name, h.Settings.Ruleset)
	}
	return string(b), nil
}

// hasStatements reports whether the text has anything but blank lines and comments.
func hasStatements(s string) bool {
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			return true
		}
	}
	return false
}

// scrubTempPaths replaces haltfleet's temp file names in nft messages with a stable word,
// so an error reads "ruleset:3:5-9: Error: ..." instead of a random path.
func scrubTempPaths(s string) string {
	prefix := RunDir + "/ruleset."
	for {
		i := strings.Index(s, prefix)
		if i < 0 {
			return s
		}
		j := strings.Index(s[i:], ".nft")
		if j < 0 {
			return s
		}
		s = s[:i] + "ruleset" + s[i+j+len(".nft"):]
	}
}

// RulesetInSync compares the live ruleset with desired: "" means in sync, else a unified
// diff live → desired of the stateless listings. Read-only on the host (a temp file in
// RunDir comes and goes).
func RulesetInSync(ctx context.Context, r runner.Runner, desired string) (string, error) {
	s := newSectioned()
	writeRulesetRead(s, true)
	sec, code, stderr, err := s.exec(ctx, r, nil)
	if err != nil {
		return "", fmt.Errorf("%s: ruleset: %w", r.Name(), err)
	}
	if code != 0 {
		return "", fmt.Errorf("%s: ruleset: read script exited %d: %s", r.Name(), code, stderr)
	}
	c, err := compareRuleset(ctx, r, r.Name(), Facts{}, nil, desired, sec)
	if err != nil || c.inSync {
		return "", err
	}
	d, _, err := rulesetDiff(ctx, r, r.Name(), c)
	return d, err
}

// PlanRuleset returns the changes that make the live ruleset, and the ruleset loaded at
// boot, equal to desired: a KindRuleset change when the canonical forms differ, then the
// persistence file and loader service for the host's distro and init. up, plan and
// audit use the same steps on their combined read (readState).
func PlanRuleset(ctx context.Context, r runner.Runner, host string, f Facts, desired string) ([]Change, error) {
	s := newSectioned()
	writeRulesetRead(s, true)
	sec, code, stderr, err := s.exec(ctx, r, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: ruleset: %w", host, err)
	}
	if code != 0 {
		return nil, fmt.Errorf("%s: ruleset: read script exited %d: %s", host, code, stderr)
	}
	return rulesetPlan(ctx, r, host, f, nil, desired, sec, true)
}
