package tasks

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/haltfleet/haltfleet/runner"
)

// Persistence says where a distro loads its nftables ruleset from at boot and how the
// loader is enabled.
type Persistence struct {
	Path   string      // the file the loader reads
	Mode   fs.FileMode // the mode the distro ships it with
	Header string      // written before "flush ruleset" and the desired ruleset
	// Loader: "systemd" (nftables.service), "sysv" (an LSB script via update-rc.d, which
	// also drives Debian's OpenRC), "openrc" (Alpine's own rc-update).
	Loader string
	// Service is the init script or unit that loads Path. With Loader "sysv", when
	// /etc/init.d/nftables is absent haltfleet installs its own script, InitScriptName.
	Service string
}

// InitScriptName is haltfleet's own start-only loader for Debian hosts without systemd,
// installed only when no /etc/init.d/nftables exists (Debian ships one only in the
// orphan-sysvinit-scripts package).
const InitScriptName = "haltfleet-nftables"

// PersistenceFor returns the boot-time ruleset location for the host, or false when
// haltfleet does not know the distro (the caller should warn: the ruleset is runtime only).
func PersistenceFor(f Facts) (Persistence, bool) {
	family := distroFamily(f.Distro)
	switch family {
	case "debian":
		p := Persistence{Path: "/etc/nftables.conf", Mode: 0o755, Header: "#!/usr/sbin/nft -f\n"}
		if f.Init == InitSystemd {
			p.Loader, p.Service = "systemd", "nftables.service"
		} else {
			p.Loader, p.Service = "sysv", "nftables"
		}
		return p, true
	case "rhel":
		if f.Init != InitSystemd {
			return Persistence{}, false // RHEL 6 and older: iptables only, no nftables.service
		}
		return Persistence{Path: "/etc/sysconfig/nftables.conf", Mode: 0o600,
			Loader: "systemd", Service: "nftables.service"}, true
	case "alpine":
		return Persistence{Path: "/etc/nftables.nft", Mode: 0o644, Loader: "openrc", Service: "nftables"}, true
	}
	return Persistence{}, false
}

// distroFamily maps os-release ID / ID_LIKE to the families haltfleet knows.
func distroFamily(d Distro) string {
	ids := append([]string{d.ID}, d.IDLike...)
	for _, id := range ids {
		switch strings.ToLower(id) {
		case "debian", "ubuntu", "devuan", "raspbian":
			return "debian"
		case "rhel", "centos", "fedora", "rocky", "almalinux", "ol", "amzn":
			return "rhel"
		case "alpine":
			return "alpine"
		}
	}
	return ""
}

// PersistContent is the boot file's content for a desired ruleset: it starts from an empty
// ruleset so loading it twice gives the same result.
func PersistContent(p Persistence, desired string) string {
	var sb strings.Builder
	sb.WriteString(p.Header)
	sb.WriteString("# Written by haltfleet; edit the inventory's ruleset instead.\n\nflush ruleset\n\n")
	sb.WriteString(stripPreamble(desired))
	if !strings.HasSuffix(desired, "\n") {
		sb.WriteString("\n")
	}
	return sb.String()
}

// stripPreamble drops a leading "#!" line and a leading "flush ruleset" from a ruleset
// file: PersistContent writes its own, and twice reads as a mistake.
func stripPreamble(desired string) string {
	rest := desired
	if strings.HasPrefix(rest, "#!") {
		_, rest, _ = strings.Cut(rest, "\n")
	}
	trimmed := strings.TrimLeft(rest, " \t\n")
	if line, after, _ := strings.Cut(trimmed, "\n"); strings.TrimSpace(line) == "flush ruleset" {
		rest = after
	}
	return rest
}

// persistChanges turns the persistence sections into changes.
func persistChanges(host string, p Persistence, desired string, sec map[string]string) ([]Change, error) {
	var out []Change
	want := PersistContent(p, desired)
	cur, present := sec["persist-file"]
	if !present || cur != want {
		out = append(out, Change{
			Host: host, Stage: "persist", Kind: KindFile, Path: p.Path, Mode: p.Mode,
			Summary: "load the ruleset at boot from " + p.Path,
			Old:     cur, New: want, Diff: UnifiedDiff(p.Path, p.Path+" (haltfleet)", cur, want),
		})
	}
	state := strings.TrimSpace(sec["loader"])
	switch p.Loader {
	case "systemd":
		switch state {
		case "enabled", "enabled-runtime", "static", "alias", "indirect", "generated":
		case "masked", "masked-runtime":
			out = append(out, commandChange(host, "unmask and enable "+p.Service,
				"systemctl unmask "+runner.Quote(p.Service)+" && systemctl enable "+runner.Quote(p.Service)))
		case "", "not-found":
			return nil, fmt.Errorf("%s: persist: %s not found (is the nftables package installed?)", host, p.Service)
		default:
			out = append(out, commandChange(host, "enable "+p.Service+" so the ruleset loads at boot",
				"systemctl enable "+runner.Quote(p.Service)))
		}
	case "sysv":
		word, svc, _ := strings.Cut(state, " ")
		if word != "enabled" && word != "present" {
			word, svc = "absent", InitScriptName
		}
		if svc == InitScriptName {
			// Ours: keep its content current too.
			script := InitScript(p.Path)
			if cur, ok := sec["initscript"]; !ok || cur != script {
				out = append(out, Change{
					Host: host, Stage: "persist", Kind: KindFile, Path: "/etc/init.d/" + InitScriptName, Mode: 0o755,
					Summary: "install a start-only init script loading " + p.Path + " (no nftables init script present)",
					Old:     cur, New: script,
					Diff: UnifiedDiff("/etc/init.d/"+InitScriptName, "/etc/init.d/"+InitScriptName+" (haltfleet)", cur, script),
				})
			}
		}
		if word != "enabled" {
			out = append(out, commandChange(host, "enable /etc/init.d/"+svc+" at boot (rcS / sysinit)", sysvEnable(svc)))
		}
	case "openrc":
		if state != "enabled" {
			out = append(out, commandChange(host, "enable the nftables service in the boot runlevel",
				"rc-update add "+runner.Quote(p.Service)+" boot"))
		}
	}
	return out, nil
}

// sysvEnable resets the script's links to its LSB defaults: "defaults" alone keeps
// existing (disabled) links, so remove them first.
func sysvEnable(svc string) string {
	q := runner.Quote(svc)
	return "update-rc.d -f " + q + " remove >/dev/null && update-rc.d " + q + " defaults"
}

func commandChange(host, summary, cmd string) Change {
	return Change{Host: host, Stage: "persist", Kind: KindCommand, Summary: summary, Command: cmd}
}

// InitScript is haltfleet's LSB loader: it loads the ruleset early in rcS and does nothing
// on stop, so a shutdown never flushes the firewall.
func InitScript(rulesetPath string) string {
	return `#!/bin/sh
### BEGIN INIT INFO
# Provides:          ` + InitScriptName + `
# Required-Start:    mountkernfs
# Required-Stop:
# X-Start-Before:    networking ifupdown
# Default-Start:     S
# Default-Stop:
# Short-Description: Load the nftables ruleset (haltfleet)
# Description:       Loads ` + rulesetPath + ` at boot. Stop does nothing on purpose:
#                    the ruleset stays in the kernel through a shutdown.
### END INIT INFO

RULESET=` + runner.Quote(rulesetPath) + `
NFT=/usr/sbin/nft

case "$1" in
start|restart|reload|force-reload)
	[ -x "$NFT" ] || exit 0
	[ -r "$RULESET" ] || exit 0
	"$NFT" -f "$RULESET"
	;;
stop)
	exit 0
	;;
status)
	"$NFT" list ruleset >/dev/null
	;;
*)
	echo "Usage: $0 {start|stop|restart|reload|force-reload|status}" >&2
	exit 3
	;;
esac
`
}

// ApplyFile writes a KindFile change: atomic upload (temp + rename) as root with ch.Mode.
func ApplyFile(ctx context.Context, r runner.Runner, ch Change) error {
	if err := checkManagedPath(ch.Path); err != nil {
		return fmt.Errorf("%s: %s: %w", r.Name(), ch.Stage, err)
	}
	mode := ch.Mode
	if mode == 0 {
		mode = 0o644
	}
	if err := r.Upload(ctx, ch.Path, strings.NewReader(ch.New), mode, true); err != nil {
		return fmt.Errorf("%s: %s: write %s: %w", r.Name(), ch.Stage, ch.Path, err)
	}
	return nil
}

// ApplyRemove deletes the file of a KindRemove change (absent is fine).
func ApplyRemove(ctx context.Context, r runner.Runner, ch Change) error {
	if err := checkManagedPath(ch.Path); err != nil {
		return fmt.Errorf("%s: %s: %w", r.Name(), ch.Stage, err)
	}
	if _, err := r.Exec(ctx, runner.Cmd{Command: "rm -f -- " + runner.Quote(ch.Path), Sudo: true}); err != nil {
		return fmt.Errorf("%s: %s: remove %s: %w", r.Name(), ch.Stage, ch.Path, err)
	}
	return nil
}

// checkManagedPath refuses paths that are not absolute and clean, so a change built from a
// hostile inventory cannot climb out with "..".
func checkManagedPath(p string) error {
	if p == "" || !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return fmt.Errorf("refusing to write %q: not an absolute, clean path", p)
	}
	if slices.Contains(strings.Split(p, "/"), "..") {
		return fmt.Errorf("refusing to write %q: contains ..", p)
	}
	return nil
}
