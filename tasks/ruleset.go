package tasks

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// rulesetState is what one round trip learns about desired vs live.
type rulesetState struct {
	desiredCanon, liveCanon []string
	desiredText, liveText   string // nft -s list ruleset (stateless), for the diff
	oldText                 string // nft list ruleset, as it is now
	sections                map[string]string
}

// diff is "" when the rulesets mean the same, else a unified diff live → desired.
func (s rulesetState) diff() string {
	if slices.Equal(s.desiredCanon, s.liveCanon) {
		return ""
	}
	d := UnifiedDiff("live", "desired", s.liveText, s.desiredText)
	if d == "" {
		// Same listing, different meaning (e.g. a detail nft's text hides): show the canonical form.
		d = UnifiedDiff("live (canonical)", "desired (canonical)",
			strings.Join(s.liveCanon, "\n")+"\n", strings.Join(s.desiredCanon, "\n")+"\n")
	}
	return d
}

// writeCompareScript appends the steps shared by PlanRuleset and RulesetInSync: store stdin
// (the desired ruleset) in a private temp file, nft -c it, load it in a throwaway network
// namespace to list it canonically, and list the live ruleset.
func writeCompareScript(s *sectioned) {
	tmp := RunDir + "/ruleset.check." + nonce() + ".nft"
	s.line("set -f; umask 077")
	s.line(fmt.Sprintf(`for c in nft unshare; do command -v $c >/dev/null 2>&1 || { echo "$c not found on PATH" >&2; exit %d; }; done`, exitNoTools))
	s.line(fmt.Sprintf("D=%s; N=%s", runner.Quote(RunDir), runner.Quote(tmp)))
	s.line(fmt.Sprintf(`mkdir -p "$D" && chmod 700 "$D" || exit %d`, exitRunDir))
	s.line(`trap 'rm -f "$N"' EXIT`)
	s.line(fmt.Sprintf(`cat > "$N" || exit %d`, exitUpload))
	s.line(fmt.Sprintf(`if ! out=$(nft -c -f "$N" 2>&1); then printf '%%s\n' "$out" >&2; exit %d; fi`, exitCheck))
	// The throwaway namespace gets dummy interfaces named like the host's, so rules that
	// name a device by index (iif, netdev hooks) load there as they do on the host.
	s.line(`ifs=$(ls /sys/class/net 2>/dev/null)`)
	s.line("mark canon-json")
	inner := `f=$1; m=$2; shift 2; for i; do [ "$i" = lo ] || ip link add name "$i" type dummy 2>/dev/null; done; ` +
		`nft -f "$f" && nft -s -j list ruleset && printf '\n%s canon-text\n' "$m" && nft -s list ruleset`
	s.line(fmt.Sprintf(`unshare -n sh -c %s sh "$N" %s $ifs || exit %d`, runner.Quote(inner), s.marker, exitCanon))
	s.line("mark live-json")
	s.line(fmt.Sprintf("nft -s -j list ruleset || exit %d", exitListLive))
	s.line("mark live-text")
	s.line(fmt.Sprintf("nft -s list ruleset || exit %d", exitListLive))
	s.line("mark old-text")
	s.line(fmt.Sprintf("nft list ruleset || exit %d", exitListLive))
}

// readCompare interprets the sections and exit code of a compare script.
func readCompare(host string, sec map[string]string, code int, stderr string) (rulesetState, error) {
	stderr = scrubTempPaths(stderr)
	switch code {
	case 0:
	case exitCheck:
		return rulesetState{}, fmt.Errorf("%s: ruleset: %w: %s", host, ErrRulesetInvalid, stderr)
	case exitCanon:
		return rulesetState{}, fmt.Errorf("%s: ruleset: %w: loading it in a throwaway network namespace failed: %s",
			host, ErrRulesetInvalid, stderr)
	default:
		return rulesetState{}, fmt.Errorf("%s: ruleset: compare script exited %d: %s", host, code, stderr)
	}
	st := rulesetState{
		desiredText: sec["canon-text"], liveText: sec["live-text"], oldText: sec["old-text"], sections: sec,
	}
	var err error
	if st.desiredCanon, err = CanonicalRuleset([]byte(sec["canon-json"])); err != nil {
		return st, fmt.Errorf("%s: ruleset: desired: %w", host, err)
	}
	if st.liveCanon, err = CanonicalRuleset([]byte(sec["live-json"])); err != nil {
		return st, fmt.Errorf("%s: ruleset: live: %w", host, err)
	}
	return st, nil
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
// diff live → desired of the canonical listings. Read-only on the host (a temp file in
// RunDir comes and goes).
func RulesetInSync(ctx context.Context, r runner.Runner, desired string) (string, error) {
	s := newSectioned()
	writeCompareScript(s)
	sec, code, stderr, err := s.exec(ctx, r, strings.NewReader(desired))
	if err != nil {
		return "", fmt.Errorf("%s: ruleset: %w", r.Name(), err)
	}
	st, err := readCompare(r.Name(), sec, code, stderr)
	if err != nil {
		return "", err
	}
	return st.diff(), nil
}

// PlanRuleset returns the changes that make the live ruleset, and the ruleset loaded at
// boot, equal to desired: a KindRuleset change when the canonical forms differ, then the
// persistence file and loader service for the host's distro and init. One round trip.
func PlanRuleset(ctx context.Context, r runner.Runner, host string, f Facts, desired string) ([]Change, error) {
	p, persist := PersistenceFor(f)
	s := newSectioned()
	writeCompareScript(s)
	if persist {
		writePersistProbe(s, p)
	}
	sec, code, stderr, err := s.exec(ctx, r, strings.NewReader(desired))
	if err != nil {
		return nil, fmt.Errorf("%s: ruleset: %w", host, err)
	}
	st, err := readCompare(host, sec, code, stderr)
	if err != nil {
		return nil, err
	}
	var changes []Change
	if d := st.diff(); d != "" {
		changes = append(changes, Change{
			Host: host, Stage: "ruleset", Kind: KindRuleset,
			Summary: "apply the nftables ruleset (behind the dead-man timer)",
			Old:     st.oldText, New: desired, Diff: d,
		})
	}
	if persist {
		pc, err := persistChanges(host, p, desired, sec)
		if err != nil {
			return nil, err
		}
		changes = append(changes, pc...)
	}
	return changes, nil
}
