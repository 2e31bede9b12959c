package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/haltfleet/haltfleet/inventory"
	"github.com/haltfleet/haltfleet/runner"
)

// ErrVerifyFailed: a check before the halt failed; the host must not be halted.
var ErrVerifyFailed = errors.New("verification failed")

// Check is one named read-back before the halt.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// Report is every check Verify ran on one host.
type Report struct {
	Host   string  `json:"host"`
	Checks []Check `json:"checks"`
}

// OK reports whether every check passed (and at least one ran).
func (r Report) OK() bool { return len(r.Checks) > 0 && len(r.Failed()) == 0 }

// Failed lists the checks that did not pass.
func (r Report) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

func (r *Report) add(name string, ok bool, detail string) {
	r.Checks = append(r.Checks, Check{Name: name, OK: ok, Detail: detail})
}

// foreverLft is the kernel's "forever" address lifetime.
const foreverLft = 4294967295

// Verify reads back everything a halted firewall depends on, before any halt: ruleset,
// sysctls, and with Halt also addresses, every teardown neutralised and the idle init
// in place and passing its self-test. Any failed check returns ErrVerifyFailed.
func Verify(ctx context.Context, r runner.Runner, f Facts, s inventory.Settings, desiredRuleset string) (Report, error) {
	rep, _, err := verify(ctx, r, f, s, desiredRuleset, nil, "")
	return rep, err
}

// verify is Verify in one round trip when canons already holds the desired ruleset's
// canonical form for this host (Up's plan put it there). With unlockID set the same
// script releases the host lock last; unlocked says it did.
func verify(ctx context.Context, r runner.Runner, f Facts, s inventory.Settings, desiredRuleset string, canons *Canons, unlockID string) (rep Report, unlocked bool, err error) {
	host := f.Host
	if host == "" {
		host = r.Name()
	}
	rep = Report{Host: host}
	extra := func(rd *armRead) {
		if desiredRuleset != "" {
			rd.cmd("live-json", "nft -s -j list ruleset 2>&1")
			rd.cmd("ifaces", `for i in /sys/class/net/*; do [ -e "$i" ] && printf '%s\n' "${i##*/}"; done`)
		}
		if len(s.Sysctls) > 0 {
			rd.cmd("sysctls", sysctlGrep(armSortedKeys(s.Sysctls)))
		}
		if s.Halt {
			rd.cmd("addrs", "ip -j addr show")
		}
		if unlockID != "" {
			rd.cmd("unlock", UnlockCommand(unlockID)+"echo unlocked")
		}
	}
	var st armState
	if s.Halt {
		st, err = readArmState(ctx, r, f, true, extra)
	} else {
		rd := newArmRead()
		extra(rd)
		st, err = rd.run(ctx, r)
	}
	if err != nil {
		rep.add("read state", false, err.Error())
		return rep, false, verifyErr(host, rep)
	}
	unlocked = unlockID != "" && st.section("unlock") == "unlocked"
	if desiredRuleset != "" {
		sec := map[string]string{"ifaces": st.sections["ifaces"]}
		if live := st.section("live-json"); strings.HasPrefix(live, "{") {
			sec["live-json"] = live
		} else {
			sec["live-json-failed"] = live
		}
		c, err := compareRuleset(ctx, r, host, f, canons, desiredRuleset, sec)
		switch {
		case err != nil:
			rep.add("ruleset", false, err.Error())
		case !c.inSync:
			d, _, derr := rulesetDiff(ctx, r, host, c)
			if derr != nil {
				d = derr.Error()
			}
			rep.add("ruleset", false, "live ruleset differs from desired:\n"+d)
		default:
			rep.add("ruleset", true, "live ruleset equals the desired one")
		}
	}
	vals := sysctlValues(armSortedKeys(s.Sysctls), st.sections["sysctls"])
	for _, k := range armSortedKeys(s.Sysctls) {
		v, ok := vals[k]
		if !ok {
			rep.add("sysctl "+k, false, "not present on this kernel")
			continue
		}
		have, want := normalizeSysctlValue(v), normalizeSysctlValue(s.Sysctls[k])
		rep.add("sysctl "+k, have == want, fmt.Sprintf("have %q, want %q", have, want))
	}
	if s.Halt {
		verifyAddrs(&rep, st.section("addrs"))
		verifyArm(&rep, host, f, st)
	}
	return rep, unlocked, verifyErr(host, rep)
}

func verifyErr(host string, rep Report) error {
	failed := rep.Failed()
	if len(failed) == 0 {
		return nil
	}
	names := make([]string, len(failed))
	for i, c := range failed {
		names[i] = c.Name
	}
	return fmt.Errorf("%s: verify: %w: %s", host, ErrVerifyFailed, strings.Join(names, ", "))
}

// verifyAddrs: every address must have a forever lifetime, or it expires after the halt.
func verifyAddrs(rep *Report, out string) {
	var links []struct {
		Ifname   string `json:"ifname"`
		AddrInfo []struct {
			Local     string `json:"local"`
			Prefixlen int    `json:"prefixlen"`
			ValidLft  int64  `json:"valid_life_time"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		rep.add("addresses", false, "cannot read `ip -j addr`: "+err.Error())
		return
	}
	var finite []string
	n := 0
	for _, l := range links {
		for _, a := range l.AddrInfo {
			n++
			if a.ValidLft != foreverLft {
				finite = append(finite, fmt.Sprintf("%s/%d on %s (valid %ds)", a.Local, a.Prefixlen, l.Ifname, a.ValidLft))
			}
		}
	}
	if len(finite) > 0 {
		rep.add("addresses", false, "finite lifetime: "+strings.Join(finite, ", "))
		return
	}
	rep.add("addresses", true, fmt.Sprintf("%d addresses, all valid forever", n))
}

// verifyArm: the arm plan derived from a fresh read must be empty, plus what a plan
// cannot express (self-test, teardowns haltfleet does not know how to neutralise).
func verifyArm(rep *Report, host string, f Facts, st armState) {
	pending, err := armChanges(host, f, st)
	switch {
	case err != nil:
		rep.add("armed", false, err.Error())
	case len(pending) > 0:
		var s []string
		for _, c := range pending {
			s = append(s, c.Summary)
		}
		rep.add("armed", false, "still to do: "+strings.Join(s, "; "))
	default:
		rep.add("armed", true, "every arming change is in place")
	}
	switch f.Init {
	case InitSystemd:
		fstype, opts := exitrdMount(st.section("exitrd"))
		rep.add("exitrd", fstype == "tmpfs" && !hasMountOption(opts, "noexec"),
			fmt.Sprintf("%s: %s %s (want its own tmpfs, not noexec)", ExitrdDir, orNone(fstype), opts))
		verifyIdle(rep, f, st, ExitrdShutdown)
		bad := systemdUnneutralised(st)
		rep.add("teardown units", len(bad) == 0, orAll(bad, "no active unit tears the network or firewall down on stop"))
	case InitSysvinit, InitRunit:
		bad := sysvUnguarded(st)
		rep.add("rc0 scripts", len(bad) == 0, orAll(bad, "every rc0 teardown script is guarded"))
		if f.Init == InitRunit {
			verifyIdle(rep, f, st, RunitIdle)
		}
	}
}

func verifyIdle(rep *Report, f Facts, st armState, path string) {
	have, _, _ := strings.Cut(st.section("idle-sha "+path), " ")
	want := idleSHA256(f.Arch)
	rep.add("idle init", have == want && st.section("idle-x "+path) == "yes",
		fmt.Sprintf("%s: sha256 %s, want %s, executable %v", path, orNone(have), want, st.section("idle-x "+path) == "yes"))
	out := st.section("idle-selftest " + path)
	ok := strings.Contains(out, "selftest ok") && strings.HasSuffix(out, "exit=0")
	rep.add("idle self-test", ok, clean(orNone(out)))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func orAll(bad []string, good string) string {
	if len(bad) == 0 {
		return good
	}
	return strings.Join(bad, "\n")
}
