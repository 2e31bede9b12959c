package tasks

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Files the sysvinit-family recipes read or edit.
const (
	rc0Dir      = "/etc/rc0.d"
	openrcConf  = "/etc/rc.conf"
	runitStage3 = "/etc/runit/3"
	nftablesRC  = "/etc/init.d/nftables"
)

// ErrNoStage3 means a runit host without /etc/runit/3: nothing to end in the idle init.
var ErrNoStage3 = errors.New(runitStage3 + " missing")

// rc0Teardown flags a stop script that downs interfaces or flushes the firewall.
const rc0Teardown = `ifdown|nft|iptables|ip link|ip addr|wg-quick|flush`

// sysvScripts are the runlevel-0 scripts haltfleet recognises by name. guard says which
// file the script sources with the action in $1, and whether that file is shared.
// Debian's are verified; the Red Hat names are from source, not yet run.
var sysvScripts = map[string]struct {
	what  string
	guard func(script armFile) (file, scriptMatch string)
}{
	"halt":       {"the CPU running (halt -i -p)", fixedGuard("/etc/default/halt")},
	"networking": {"the interfaces up (ifdown -a)", fixedGuard("/etc/default/networking")},
	"nftables":   {"the nftables ruleset (nft flush ruleset)", initDScriptGuard("*nftables")},
	// Red Hat 6.x: S00killall stops the guarded subsystems below, so it needs nothing.
	"killall":   {"", nil},
	"network":   {"the interfaces up", fixedGuard("/etc/sysconfig/network")},
	"iptables":  {"the iptables ruleset", fixedGuard("/etc/sysconfig/iptables-config")},
	"ip6tables": {"the ip6tables ruleset", fixedGuard("/etc/sysconfig/ip6tables-config")},
}

func fixedGuard(file string) func(armFile) (string, string) {
	return func(armFile) (string, string) { return file, "" }
}

// initDScriptGuard finds the default file of a script built on /lib/init/init-d-script:
// it sources /etc/default/$NAME, NAME defaulting to DAEMON's basename ("none" for the
// nftables script of orphan-sysvinit-scripts, so the guard matches the script name too).
func initDScriptGuard(match string) func(armFile) (string, string) {
	return func(script armFile) (string, string) {
		if !script.Exists || !strings.Contains(script.Content, "/lib/init/init-d-script") {
			return "", ""
		}
		name := armShellAssign(script.Content, "NAME")
		if name == "" {
			name = path.Base(armShellAssign(script.Content, "DAEMON"))
		}
		if name == "" || name == "." || strings.ContainsAny(name, "/ \t'\"$`") {
			return "", ""
		}
		return "/etc/default/" + name, match
	}
}

// shellAssign returns the value of the first top-level VAR=value line.
func armShellAssign(content, v string) string {
	for _, l := range strings.Split(content, "\n") {
		if val, ok := strings.CutPrefix(l, v+"="); ok {
			return strings.Trim(strings.TrimSpace(val), `"'`)
		}
	}
	return ""
}

func sysvRead(rd *armRead) {
	rd.cmd("rc0", `for l in `+rc0Dir+`/[KS]*; do [ -e "$l" ] || continue; t=$(readlink -f "$l"); `+
		`if grep -Eqs '`+rc0Teardown+`' "$t"; then echo "$l $t teardown"; else echo "$l $t -"; fi; done`)
	rd.file(nftablesRC)
	rd.file("/etc/default/halt")
	rd.file("/etc/default/networking")
}

// rc0Entry is one link of /etc/rc0.d.
type rc0Entry struct {
	Link, Script string
	Teardown     bool
}

func parseRC0(out string) []rc0Entry {
	var es []rc0Entry
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 3 {
			es = append(es, rc0Entry{Link: f[0], Script: f[1], Teardown: f[2] == "teardown"})
		}
	}
	return es
}

// sysvGuarded returns guard file -> (script name, scriptMatch) for the scripts present.
type sysvGuardTarget struct{ script, file, match string }

func sysvTargets(st armState, names []string) []sysvGuardTarget {
	var out []sysvGuardTarget
	seen := map[string]bool{}
	for _, n := range names {
		sc, ok := sysvScripts[n]
		if !ok || sc.guard == nil || seen[n] {
			continue
		}
		seen[n] = true
		script, _ := st.file("/etc/init.d/" + n)
		if n == "nftables" {
			script, _ = st.file(nftablesRC)
		}
		file, match := sc.guard(script)
		if file != "" {
			out = append(out, sysvGuardTarget{script: n, file: file, match: match})
		}
	}
	return out
}

func rc0Names(st armState) []string {
	var names []string
	for _, e := range parseRC0(st.sections["rc0"]) {
		names = append(names, path.Base(e.Script))
	}
	return names
}

// sysvGuardFilesMissing lists guard files the first read could not know about.
func sysvGuardFilesMissing(st armState) []string {
	var more []string
	for _, t := range sysvTargets(st, append(rc0Names(st), "halt")) {
		if _, ok := st.file(t.file); !ok {
			more = append(more, t.file)
		}
	}
	return more
}

func sysvChanges(st armState) []Change {
	return sysvGuardChanges(st, rc0Names(st))
}

// sysvGuardChanges appends the stop guard to each recognised script's sourced file.
func sysvGuardChanges(st armState, names []string) []Change {
	var out []Change
	byFile := map[string][]sysvGuardTarget{}
	for _, t := range sysvTargets(st, names) {
		byFile[t.file] = append(byFile[t.file], t)
	}
	for _, file := range armSortedKeys(byFile) {
		cur, _ := st.file(file)
		want := cur.Content
		for _, t := range byFile[file] {
			want = withGuard(want, stopGuard(sysvScripts[t.script].what, "__init_d_script_name", t.match), false)
		}
		if c, ok := armFileChange(file, cur, want, 0o644,
			fmt.Sprintf("guard %s: when armed its stop leaves %s", "/etc/init.d/"+byFile[file][0].script,
				sysvScripts[byFile[file][0].script].what)); ok {
			out = append(out, c)
		}
	}
	return out
}

// sysvUnguarded lists rc0 scripts that tear something down and that haltfleet cannot
// neutralise: Verify fails on them rather than guessing.
func sysvUnguarded(st armState) []string {
	var bad []string
	for _, e := range parseRC0(st.sections["rc0"]) {
		n := path.Base(e.Script)
		if !e.Teardown {
			continue
		}
		if len(sysvTargets(st, []string{n})) == 0 {
			bad = append(bad, e.Link+" -> "+e.Script)
		}
	}
	return bad
}

// openrcChanges adds networking and nftables to rc_nostop. rc.conf is not a shell
// script, so this cannot be gated by the arm flag; it is harmless on a reboot (the
// kernel drops the network anyway) and is said so in the summary.
func openrcChanges(st armState) []Change {
	cur, _ := st.file(openrcConf)
	want := withNoStop(cur.Content, "networking", "nftables")
	c, ok := armFileChange(openrcConf, cur, want, 0o644,
		`OpenRC: rc_nostop keeps networking and nftables up at shutdown (persistent, harmless on reboot)`)
	if !ok {
		return nil
	}
	return []Change{c}
}

var noStopLine = regexp.MustCompile(`^\s*rc_nostop\s*=\s*(.*)$`)

// withNoStop merges services into the last active rc_nostop= line, or appends one.
func withNoStop(content string, services ...string) string {
	lines := strings.Split(content, "\n")
	at := -1
	for i, l := range lines {
		if noStopLine.MatchString(l) {
			at = i
		}
	}
	var have []string
	if at >= 0 {
		have = strings.Fields(strings.Trim(noStopLine.FindStringSubmatch(lines[at])[1], `"'`))
	}
	merged := append([]string(nil), have...)
	for _, s := range services {
		if !armContains(merged, s) {
			merged = append(merged, s)
		}
	}
	line := `rc_nostop="` + strings.Join(merged, " ") + `"`
	if at >= 0 {
		if len(merged) == len(have) {
			return content
		}
		lines[at] = line
		return strings.Join(lines, "\n")
	}
	if content != "" && !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	return content + "# haltfleet: keep the network and the firewall up at shutdown\n" + line + "\n"
}

func armContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// runitChanges ends stage 3 in the idle init when armed.
func runitChanges(st armState) ([]Change, error) {
	cur, _ := st.file(runitStage3)
	if !cur.Exists {
		return nil, ErrNoStage3
	}
	want := withGuard(cur.Content, runitGuard(RunitIdle), true)
	c, ok := armFileChange(runitStage3, cur, want, 0o755,
		"runit stage 3: when armed, exec the idle init instead of letting runit call reboot(2)")
	if !ok {
		return nil, nil
	}
	return []Change{c}, nil
}
