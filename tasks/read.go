package tasks

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/haltfleet/haltfleet/runner"
)

// readSpec is what the state read fetches besides the facts.
type readSpec struct {
	lockID  string   // take the host lock for this run first ("": no lock)
	ruleset bool     // the live ruleset (JSON), the interfaces and every boot persistence candidate
	sysctls []string // sorted keys to read, and the sysctl persistence file
}

// stateRead is what the read round trip learned.
type stateRead struct {
	facts Facts
	sec   map[string]string
}

// privileged reports whether r runs root's commands without sudo, so the unprivileged
// facts and the root reads can share one script.
func privileged(r runner.Runner) bool {
	p, ok := r.(interface{ Privileged() bool })
	return ok && p.Privileged()
}

// readState is the read that starts plan, audit and up: facts plus everything the plan
// compares, and the host lock when asked. One round trip when the login user is the
// become user; otherwise two, since facts are read unprivileged and the rest needs sudo.
func readState(ctx context.Context, r runner.Runner, spec readSpec) (stateRead, error) {
	host := r.Name()
	s := newSectioned()
	if !privileged(r) {
		writeStateRead(s, spec, true)
		f, err := gatherFacts(ctx, r)
		if err != nil {
			return stateRead{}, err
		}
		if spec.lockID == "" && !spec.ruleset && len(spec.sysctls) == 0 {
			return stateRead{facts: f, sec: map[string]string{}}, nil
		}
		sec, code, stderr, err := s.exec(ctx, r, nil)
		if err != nil {
			return stateRead{facts: f}, fmt.Errorf("%s: read: %w", host, err)
		}
		if code != 0 {
			return stateRead{facts: f}, fmt.Errorf("%s: read: state script exited %d: %s", host, code, stderr)
		}
		return stateRead{facts: f, sec: sec}, nil
	}
	n, err := newNonce()
	if err != nil {
		return stateRead{}, fmt.Errorf("%s: facts: %w", host, err)
	}
	// One POSIX sh runs the facts and then the state part (exec: no shell stays behind
	// in between), whatever the login shell is. The files go through the facts script's
	// one awk, no process per file.
	files := stateFiles(spec)
	writeStateRead(s, spec, false)
	facts, ok := strings.CutSuffix(scriptWithFiles(n, files), "exit 0\n")
	if !ok {
		return stateRead{}, fmt.Errorf("%s: facts: script does not end in exit 0", host)
	}
	sec, code, stderr, stdout, err := s.execAs(ctx, r, "exec sh -c "+runner.Quote(facts+s.script()), nil)
	if err != nil {
		return stateRead{}, fmt.Errorf("%s: read: %w", host, err)
	}
	d, err := parseDump(stdout)
	if err != nil {
		return stateRead{}, fmt.Errorf("%s: facts: %w", host, err)
	}
	if d.nonce != n {
		return stateRead{}, fmt.Errorf("%s: facts: output is not from this run's script", host)
	}
	f := factsFrom(d)
	f.Host = clean(host)
	if code != 0 {
		return stateRead{facts: f}, fmt.Errorf("%s: read: state script exited %d: %s", host, code, stderr)
	}
	if !d.complete {
		return stateRead{facts: f}, fmt.Errorf("%s: read: the facts part ended early", host)
	}
	fileSections(spec, d, sec)
	return stateRead{facts: f, sec: sec}, nil
}

// stateFiles are the files the state read needs: the persistence candidates and
// haltfleet's init script, the sysctl file and each sysctl's /proc/sys file.
func stateFiles(spec readSpec) []string {
	var out []string
	if spec.ruleset {
		out = append(out, persistCandidates...)
		out = append(out, "/etc/init.d/"+InitScriptName)
	}
	if len(spec.sysctls) > 0 {
		out = append(out, SysctlPath)
		for _, k := range spec.sysctls {
			out = append(out, sysctlProcPath(k))
		}
	}
	return out
}

// xfileContent is a file as the facts awk printed it: every line ends in a newline, so
// a file's missing final newline reads as present (nft, sysctl and sh read both alike).
func xfileContent(d dump, path string) (string, bool) {
	v, ok := d.sections["xfile "+path]
	if !ok || v == "" {
		return "", ok
	}
	return v + "\n", true
}

// fileSections puts the files from the facts part under the names the cat-based state
// read gives them, so the plan reads one shape whichever path ran.
func fileSections(spec readSpec, d dump, sec map[string]string) {
	if spec.ruleset {
		for _, p := range persistCandidates {
			if v, ok := xfileContent(d, p); ok {
				sec["persist-file "+p] = v
			}
		}
		if v, ok := xfileContent(d, "/etc/init.d/"+InitScriptName); ok {
			sec["initscript"] = v
		}
	}
	if len(spec.sysctls) > 0 {
		if v, ok := xfileContent(d, SysctlPath); ok {
			sec["sysctl-file"] = v
		}
		var b strings.Builder
		for _, k := range spec.sysctls {
			p := sysctlProcPath(k)
			if v, ok := xfileContent(d, p); ok {
				for _, l := range strings.Split(strings.TrimSuffix(v, "\n"), "\n") {
					b.WriteString(p + ":" + l + "\n")
				}
			}
		}
		sec["sysctls"] = b.String()
	}
}

// persistCandidates are the boot files PersistenceFor may pick; the read takes them all
// because the pick needs the facts the same round trip returns.
var persistCandidates = []string{"/etc/nftables.conf", "/etc/sysconfig/nftables.conf", "/etc/nftables.nft"}

// writeStateRead appends the root reads. Shell builtins only, but for nft and
// systemctl on systemd hosts (and with files, a cat per file and a grep): the read runs
// on every host of every run. Without files the caller reads them (stateFiles).
func writeStateRead(s *sectioned, spec readSpec, files bool) {
	if spec.lockID != "" {
		s.line("mark lock")
		s.line("( " + LockCommand(spec.lockID) + ") 2>&1 && echo ok || echo \"failed $?\"")
	}
	if spec.ruleset {
		writeRulesetRead(s, files)
	}
	if len(spec.sysctls) > 0 && files {
		writeSysctlRead(s, spec.sysctls)
	}
	s.line("exit 0")
}

// writeRulesetRead lists the live ruleset as JSON, the interface names (part of the
// canonical key) and every persistence candidate with its loader state.
func writeRulesetRead(s *sectioned, files bool) {
	s.line(`if command -v nft >/dev/null 2>&1; then mark live-json; nft -s -j list ruleset; rc=$?; [ $rc = 0 ] || { mark live-json-failed; echo $rc; }; else mark no-nft; fi`)
	s.line(`mark ifaces; for i in /sys/class/net/*; do [ -e "$i" ] && printf '%s\n' "${i##*/}"; done`)
	if files {
		for _, p := range persistCandidates {
			q := runner.Quote(p)
			s.line(fmt.Sprintf("if [ -e %s ]; then mark %s; cat %s; fi", q, runner.Quote("persist-file "+p), q))
		}
	}
	// systemctl only where systemd runs; the sysv and OpenRC states are globs.
	s.line(`c=; [ -r /proc/1/comm ] && read -r c < /proc/1/comm`)
	s.line(`if command -v systemctl >/dev/null 2>&1 && { [ -d /run/systemd/system ] || [ "$c" = systemd ]; }; then mark loader-systemd; systemctl is-enabled nftables.service 2>/dev/null; fi`)
	// Enabled: a start link in rcS (sysvinit, and runit which runs rcS in stage 1) or an
	// OpenRC runlevel entry (Debian's OpenRC, which update-rc.d also drives).
	s.line(`mark loader-sysv; st=absent; for svc in nftables ` + InitScriptName + `; do [ -e /etc/init.d/$svc ] || continue; st="present $svc"; ` +
		`for l in /etc/rcS.d/S??$svc /etc/runlevels/*/$svc; do [ -e "$l" ] && st="enabled $svc"; done; [ "${st%% *}" = enabled ] && break; done; echo "$st"`)
	if files {
		s.line(fmt.Sprintf("if [ -e /etc/init.d/%s ]; then mark initscript; cat /etc/init.d/%s; fi", InitScriptName, InitScriptName))
	}
	s.line(`mark loader-openrc; st=disabled; for l in /etc/runlevels/*/nftables; do [ -e "$l" ] && st=enabled; done; echo $st`)
}

// persistSections maps the read's sections for p to the names persistChanges reads.
func persistSections(p Persistence, sec map[string]string) map[string]string {
	out := map[string]string{}
	if v, ok := sec["persist-file "+p.Path]; ok {
		out["persist-file"] = v
	}
	if v, ok := sec["loader-"+p.Loader]; ok {
		out["loader"] = v
	}
	if v, ok := sec["initscript"]; ok {
		out["initscript"] = v
	}
	return out
}

// lockResult reads the lock section: "" when taken, else the holder's run id (or an
// error when the lock could not be tried at all).
func lockResult(host string, sec map[string]string) (holder string, err error) {
	out := strings.TrimSpace(sec["lock"])
	lines := strings.Split(out, "\n")
	last := lines[len(lines)-1]
	switch {
	case last == "ok":
		return "", nil
	case last == fmt.Sprintf("failed %d", exitLocked):
		msg := strings.Join(lines[:len(lines)-1], " ")
		owner, _, _ := strings.Cut(strings.TrimPrefix(msg, "held by run "), " since ")
		if owner == "" {
			return "", fmt.Errorf("%s: lock: %w: %s", host, ErrLocked, msg)
		}
		return owner, fmt.Errorf("%s: lock: %w: %s", host, ErrLocked, msg)
	}
	msg := strings.TrimSpace(strings.Join(lines[:len(lines)-1], "\n"))
	if code, ok := strings.CutPrefix(last, "failed "); ok {
		return "", fmt.Errorf("%s: lock: exit %s: %s", host, code, orNone(msg))
	}
	return "", fmt.Errorf("%s: lock: %s", host, orNone(out))
}

// liveRuleset reads the live listing from a state read.
func liveRuleset(host string, sec map[string]string) ([]byte, error) {
	if _, ok := sec["no-nft"]; ok {
		return nil, fmt.Errorf("%s: ruleset: nft not found on PATH", host)
	}
	if rc, failed := sec["live-json-failed"]; failed {
		return nil, fmt.Errorf("%s: ruleset: nft -j list ruleset exited %s", host, strings.TrimSpace(rc))
	}
	j, ok := sec["live-json"]
	if !ok {
		return nil, fmt.Errorf("%s: ruleset: the read returned no live ruleset", host)
	}
	return []byte(j), nil
}

// stateKey is the canonical-form key of a host from its read.
func stateKey(desired string, f Facts, live []byte, sec map[string]string) string {
	ifaces := strings.Fields(sec["ifaces"])
	slices.Sort(ifaces)
	return canonKey(desired, nftVersion(live), f, ifaces)
}

// rulesetCompare is the outcome of comparing live with desired.
type rulesetCompare struct {
	inSync      bool
	liveCanon   []string
	desiredCan  []string
	desiredText string // stateless listing of desired as nft loads it
}

// compareRuleset compares a host's live listing with desired, canonicalising desired on
// that host only when canons has no listing for the host's key.
func compareRuleset(ctx context.Context, r runner.Runner, host string, f Facts, canons *Canons, desired string, sec map[string]string) (rulesetCompare, error) {
	live, err := liveRuleset(host, sec)
	if err != nil {
		return rulesetCompare{}, err
	}
	var c rulesetCompare
	if c.liveCanon, err = CanonicalRuleset(live); err != nil {
		return c, fmt.Errorf("%s: ruleset: live: %w", host, err)
	}
	key := stateKey(desired, f, live, sec)
	if err := canons.waitClaim(ctx, desired); err != nil {
		return c, fmt.Errorf("%s: ruleset: %w", host, err)
	}
	c.desiredCan, c.desiredText, err = canons.get(ctx, key, func() ([]string, string, error) {
		return canonicaliseDesired(ctx, r, desired)
	})
	if err != nil {
		return c, fmt.Errorf("%s: ruleset: %w", host, err)
	}
	c.inSync = slices.Equal(c.liveCanon, c.desiredCan)
	return c, nil
}

// rulesetDiff is the unified diff live → desired of the stateless listings, or of the
// canonical forms when the listings read the same; full is the live ruleset as it is.
func rulesetDiff(ctx context.Context, r runner.Runner, host string, c rulesetCompare) (diff, full string, err error) {
	liveText, full, err := liveTexts(ctx, r)
	if err != nil {
		return "", "", fmt.Errorf("%s: ruleset: %w", host, err)
	}
	d := UnifiedDiff("live", "desired", liveText, c.desiredText)
	if d == "" {
		// Same listing, different meaning (e.g. a detail nft's text hides): show the canonical form.
		d = UnifiedDiff("live (canonical)", "desired (canonical)",
			strings.Join(c.liveCanon, "\n")+"\n", strings.Join(c.desiredCan, "\n")+"\n")
	}
	return d, full, nil
}

// rulesetPlan turns a state read into the ruleset and persistence changes. withDiff
// fetches the live text for the change's Old and Diff (plan and audit show them; up
// does not need them and saves the round trip).
func rulesetPlan(ctx context.Context, r runner.Runner, host string, f Facts, canons *Canons, desired string, sec map[string]string, withDiff bool) ([]Change, error) {
	c, err := compareRuleset(ctx, r, host, f, canons, desired, sec)
	if err != nil {
		return nil, err
	}
	var changes []Change
	if !c.inSync {
		ch := Change{Host: host, Stage: "ruleset", Kind: KindRuleset,
			Summary: "apply the nftables ruleset (behind the dead-man timer)", New: desired}
		if withDiff {
			if ch.Diff, ch.Old, err = rulesetDiff(ctx, r, host, c); err != nil {
				return nil, err
			}
		}
		changes = append(changes, ch)
	}
	if p, ok := PersistenceFor(f); ok {
		pc, err := persistChanges(host, p, desired, persistSections(p, sec))
		if err != nil {
			return nil, err
		}
		changes = append(changes, pc...)
	}
	return changes, nil
}
