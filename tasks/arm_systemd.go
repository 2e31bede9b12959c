package tasks

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/haltfleet/haltfleet/runner"
)

// systemdTeardown lists the units whose stop tears down the firewall or the network,
// with the unit a drop-in must name (templates get one drop-in for every instance).
var systemdTeardown = []struct{ pattern, dropin string }{
	{"nftables.service", "nftables.service"},               // ExecStop=nft flush ruleset
	{"networking.service", "networking.service"},           // ifdown -a
	{"ifup@*.service", "ifup@.service"},                    // ifdown per interface
	{"ufw.service", "ufw.service"},                         // ufw stop flushes
	{"wg-quick@*.service", "wg-quick@.service"},            // wg-quick down deletes the interface
	{"dracut-shutdown.service", "dracut-shutdown.service"}, // would replace the exitrd
	{"iptables.service", "iptables.service"},               // RHEL: flushes on stop
	{"ip6tables.service", "ip6tables.service"},             // RHEL: flushes on stop
}

// systemdDropin empties ExecStop and ExecStopPost (both, always, so a re-read of an
// armed unit plans the same content); /run keeps it from surviving a reboot.
const systemdDropin = "[Service]\nExecStop=\nExecStopPost=\n"

// teardownPattern is DESIGN's generic pre-halt check on stop commands.
var teardownPattern = regexp.MustCompile(`ifdown|nft|iptables|ip link|ip addr|wg-quick|flush`)

const firewalldConf = "/etc/firewalld/firewalld.conf"

func dropinPath(unit string) string {
	return "/run/systemd/system/" + unit + ".d/haltfleet.conf"
}

func systemdRead(rd *armRead, f Facts, verify bool) {
	rd.cmd("exitrd", "findmnt -n -o FSTYPE,OPTIONS --mountpoint "+runner.Quote(ExitrdDir))
	rd.cmd("units", "systemctl show '*' --state=active -p Id,ActiveState,ExecStop,ExecStopPost --no-pager")
	idleRead(rd, ExitrdShutdown, verify)
	for _, t := range systemdTeardown {
		rd.file(dropinPath(t.dropin))
	}
	if f.Firewall.Firewalld {
		rd.file(firewalldConf)
	}
}

// systemdUnit is one block of `systemctl show`.
type systemdUnit struct {
	ID, Active, ExecStop, ExecStopPost string
}

func parseSystemdUnits(out string) []systemdUnit {
	var units []systemdUnit
	for _, block := range strings.Split(strings.ReplaceAll(out, "\r", ""), "\n\n") {
		var u systemdUnit
		for _, line := range strings.Split(block, "\n") {
			k, v, _ := strings.Cut(line, "=")
			switch k {
			case "Id":
				u.ID = v
			case "ActiveState":
				u.Active = v
			case "ExecStop":
				u.ExecStop = v
			case "ExecStopPost":
				u.ExecStopPost = v
			}
		}
		if u.ID != "" && (u.Active == "" || u.Active == "active" || u.Active == "reloading") {
			units = append(units, u)
		}
	}
	return units
}

// teardownDropin returns the drop-in unit for an active unit haltfleet neutralises.
func teardownDropin(id string) (string, bool) {
	for _, t := range systemdTeardown {
		if ok, _ := path.Match(t.pattern, id); ok {
			return t.dropin, true
		}
	}
	return "", false
}

func systemdChanges(f Facts, st armState) []Change {
	var out []Change
	fstype, opts := exitrdMount(st.section("exitrd"))
	switch {
	case fstype == "":
		out = append(out, Change{Kind: KindCommand,
			Summary: "mount a tmpfs exitrd at " + ExitrdDir + " (runtime only)",
			Command: "mkdir -p " + runner.Quote(ExitrdDir) + " && mount -t tmpfs -o " + ExitrdMountOptions +
				" haltfleet-exitrd " + runner.Quote(ExitrdDir)})
	case hasMountOption(opts, "noexec"):
		out = append(out, Change{Kind: KindCommand,
			Summary: ExitrdDir + " is mounted noexec: remount it exec",
			Command: "mount -o remount,exec " + runner.Quote(ExitrdDir)})
	}
	out = append(out, idleChanges(f, st, ExitrdShutdown)...)

	dropins := map[string]string{} // drop-in unit -> first active unit needing it
	for _, u := range parseSystemdUnits(st.sections["units"]) {
		if d, ok := teardownDropin(u.ID); ok {
			if _, seen := dropins[d]; !seen {
				dropins[d] = u.ID
			}
		}
	}
	var dirs []string // Upload does not create directories
	for _, d := range armSortedKeys(dropins) {
		if cur, _ := st.file(dropinPath(d)); !cur.Exists {
			dirs = append(dirs, runner.Quote(armDir(dropinPath(d))))
		}
	}
	if len(dirs) > 0 {
		out = append(out, Change{Kind: KindCommand, Summary: "create the runtime drop-in directories",
			Command: "mkdir -p " + strings.Join(dirs, " ")})
	}
	reload := false
	for _, d := range armSortedKeys(dropins) {
		p := dropinPath(d)
		cur, _ := st.file(p)
		if c, ok := armFileChange(p, cur, systemdDropin, 0o644,
			fmt.Sprintf("runtime drop-in: %s keeps the firewall/network up on stop (seen active: %s)", d, dropins[d])); ok {
			out = append(out, c)
			reload = true
		}
	}
	if reload {
		out = append(out, Change{Kind: KindCommand, Summary: "reload systemd so the drop-ins take effect",
			Command: "systemctl daemon-reload"})
	}
	if f.Firewall.Firewalld {
		cur, _ := st.file(firewalldConf)
		want := withConfValue(cur.Content, "CleanupOnExit", "no")
		if c, ok := armFileChange(firewalldConf, cur, want, 0o644,
			"firewalld: CleanupOnExit=no so its exit leaves the ruleset (persistent, harmless on reboot)"); ok {
			out = append(out, c, Change{Kind: KindCommand, Summary: "firewalld re-reads CleanupOnExit",
				Command: "firewall-cmd --reload"})
		}
	}
	return out
}

// systemdUnneutralised lists active units whose stop would still tear something down:
// DESIGN's generic pre-halt check.
func systemdUnneutralised(st armState) []string {
	var bad []string
	for _, u := range parseSystemdUnits(st.sections["units"]) {
		stop := u.ExecStop + " " + u.ExecStopPost
		if teardownPattern.MatchString(stop) {
			bad = append(bad, u.ID+": "+strings.TrimSpace(stopArgv(stop)))
		}
	}
	return bad
}

// stopArgv shortens systemd's "{ path=... ; argv[]=CMD ; ... }" to CMD for messages.
func stopArgv(s string) string {
	var parts []string
	for _, m := range regexp.MustCompile(`argv\[\]=([^;]*)`).FindAllStringSubmatch(s, -1) {
		parts = append(parts, strings.TrimSpace(m[1]))
	}
	if len(parts) == 0 {
		return s
	}
	return strings.Join(parts, "; ")
}

// exitrdMount parses findmnt's FSTYPE OPTIONS; the last line is the top of a stack.
func exitrdMount(out string) (fstype, opts string) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	fields := strings.Fields(lines[len(lines)-1])
	if len(fields) >= 1 {
		fstype = fields[0]
	}
	if len(fields) >= 2 {
		opts = fields[1]
	}
	return fstype, opts
}

func hasMountOption(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// withConfValue sets KEY=value in a KEY=value file, replacing the active line or
// appending one.
func withConfValue(content, key, value string) string {
	lines := strings.Split(content, "\n")
	for i, l := range lines {
		if k, _, ok := strings.Cut(strings.TrimSpace(l), "="); ok && strings.TrimSpace(k) == key {
			lines[i] = key + "=" + value
			return strings.Join(lines, "\n")
		}
	}
	if content != "" && !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	return content + key + "=" + value + "\n"
}
