package tasks

import (
	"strings"
)

// ArmFlag exists only between the halt step and the next boot (it lives in /run): every
// persistent edit haltfleet makes is inert without it, so an ordinary shutdown, reboot
// or power cycle behaves as before. Halt creates it, after Verify passed.
const ArmFlag = "/run/haltfleet/armed"

// Guard block markers: a block is found, replaced or left alone by these lines.
const (
	guardBegin = "# >>> haltfleet arm guard: inert unless " + ArmFlag + " exists >>>"
	guardEnd   = "# <<< haltfleet arm guard <<<"
)

// stopGuard is appended to a file an init script sources before it acts ($1 is the
// action there): on "stop" while armed the script leaves everything in place. The
// if-form keeps the sourced file's status 0 under `sh -e` scripts when not armed.
// scriptMatch, when set, limits the guard to scripts whose name matches the case
// pattern (for files several scripts source, like init-d-script's /etc/default/NAME).
func stopGuard(what, scriptVar, scriptMatch string) string {
	cond := `[ -e ` + ArmFlag + ` ] && [ "${1:-}" = stop ]`
	if scriptMatch != "" {
		cond += ` && case "${` + scriptVar + `:-}" in ` + scriptMatch + `) true ;; *) false ;; esac`
	}
	return guardBegin + "\n" +
		"if " + cond + "; then\n" +
		"\techo \"haltfleet: armed, leaving " + what + " in place\" >&2\n" +
		"\texit 0\n" +
		"fi\n" +
		guardEnd + "\n"
}

// runitGuard ends runit's stage 3 in the idle init, so runit never calls reboot(2).
func runitGuard(idle string) string {
	return guardBegin + "\n" +
		"if [ -e " + ArmFlag + " ]; then\n" +
		"\techo 'haltfleet: armed, parking in the idle init' >&2\n" +
		"\texec " + idle + " halt\n" +
		"fi\n" +
		guardEnd + "\n"
}

// withGuard returns content with block in place: an existing block is replaced, else
// the block goes at the end (or, with beforeExit, before a trailing `exit` line).
func withGuard(content, block string, beforeExit bool) string {
	if i := strings.Index(content, guardBegin); i >= 0 {
		if j := strings.Index(content[i:], guardEnd); j >= 0 {
			end := i + j + len(guardEnd)
			if end < len(content) && content[end] == '\n' {
				end++
			}
			return content[:i] + block + content[end:]
		}
	}
	if content != "" && !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	if beforeExit {
		lines := strings.SplitAfter(content, "\n")
		k := len(lines)
		for k > 0 {
			l := strings.TrimSpace(lines[k-1])
			if l == "" || strings.HasPrefix(l, "exit") {
				k--
				continue
			}
			break
		}
		// only move before a real trailing exit; blank lines alone stay after the block
		hasExit := false
		for _, l := range lines[k:] {
			if strings.HasPrefix(strings.TrimSpace(l), "exit") {
				hasExit = true
			}
		}
		if hasExit {
			return strings.Join(lines[:k], "") + block + strings.Join(lines[k:], "")
		}
	}
	return content + block
}

// armDir is the directory part of an absolute path.
func armDir(p string) string {
	if i := strings.LastIndexByte(p, '/'); i > 0 {
		return p[:i]
	}
	return "/"
}
