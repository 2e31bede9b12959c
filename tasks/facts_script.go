package tasks

import (
	"strconv"
	"strings"

	"github.com/haltfleet/haltfleet/runner"
)

// factsScript is the single POSIX sh program Gather sends. It must run on busybox ash,
// dash and bash, never fail as a whole, and print only bounded, delimited sections:
//
//	@@hf:NONCE begin
//	@@hf:NONCE file /etc/os-release
//	...content...
//	@@hf:NONCE end
//
// Interpretation happens on the Go side (resolvers), so the script only collects.
//
// It runs on every host of a wave at once, on CPUs the hosts may share, so it forks as
// little as it can: tests, globs, `command -v` and `read` are shell builtins, and one awk
// prints every file section (with its byte cap), the process scan, the mount lines and
// `ip -j addr`. On a root sysvinit host it execs readlink, ip and awk, nothing else.
// testdata/facts/script-v1.sh is the ~40-exec script this replaced; the tests run both
// and require the same Facts.
const factsScript = `exec 2>/dev/null
LC_ALL=C; export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH; export PATH
M='@@hf:NONCE'
A='AWKPROG'
nl='
'
sec() { printf '\n%s %s\n' "$M" "$*"; }
has() { command -v "$1" >/dev/null; }
sec begin
set --
for p in /etc/os-release /usr/lib/os-release /etc/redhat-release /etc/debian_version \
  /etc/alpine-release /etc/arch-release /proc/1/comm /run/container_type \
  /run/systemd/container /etc/firewalld/firewalld.conf /etc/ufw/ufw.conf \
  /proc/net/ip_tables_names /etc/network/interfaces; do
  [ -f "$p" ] && [ -r "$p" ] && set -- "$@" "file $p" 65536 "$p"
done
n=0
for p in /etc/network/interfaces.d/*; do
  [ -e "$p" ] || [ -L "$p" ] || continue
  n=$((n+1)); [ "$n" -gt 16 ] && break
  [ -f "$p" ] && [ -r "$p" ] && set -- "$@" "file $p" 65536 "$p"
done
[ -r /proc/1/comm ] || set -- "$@" pid1-stat 256 /proc/1/stat
EXTRAFILES
sec uname
k= r= m=
read -r k </proc/self/personality
read -r r </proc/sys/kernel/osrelease
read -r m </proc/sys/kernel/arch
if [ "$k" = 00000000 ] && [ -n "$r" ] && [ -n "$m" ]; then printf '%s\n%s\n' "$r" "$m"
else uname -r; uname -m; fi
sec exists
n=0
for p in /run/systemd/system /run/openrc /run/runit /etc/runit /.dockerenv /run/.containerenv /etc/netplan/*.yaml; do
  [ -e "$p" ] && [ "$n" -lt 64 ] && { printf '%s\n' "$p"; n=$((n+1)); }
done
sec pid1-exe
if [ -e /proc/1/exe ]; then readlink /proc/1/exe || ls -l /proc/1/exe; fi
sec sbin-init
if [ -f /sbin/init ] && cd -P /sbin && [ ! -L "$PWD/init" ]; then printf '%s/init\n' "${PWD%/}"
else readlink -f /sbin/init || ls -l /sbin/init; fi
sec detect-virt
if has systemd-detect-virt; then systemd-detect-virt -c </dev/null; fi
sec which
for c in nft iptables ip ifup systemctl findmnt sudo firewall-cmd ufw netplan; do
  has "$c" && { printf '%s ' "$c"; command -v "$c"; }
done
sec iptables-version
if has iptables; then iptables -V </dev/null; fi
sec services
U='firewalld ufw nftables systemd-networkd NetworkManager networking'
if [ -d /run/systemd/system ] && has systemctl; then
  systemctl show -p ActiveState,UnitFileState firewalld.service ufw.service nftables.service \
    systemd-networkd.service NetworkManager.service networking.service </dev/null | {
    for s in $U; do
      a= e=
      while IFS= read -r l; do
        case $l in ActiveState=*) a=${l#*=} ;; UnitFileState=*) e=${l#*=} ;; '') break ;; esac
      done
      printf '%s %s %s\n' "$s" "${a:-unknown}" "${e:-unknown}"
    done
  }
else
  for s in $U; do
    a=unknown
    if [ -d /run/openrc ]; then
      a=inactive; [ -e "/run/openrc/started/$s" ] && a=active
      e=disabled; for l in /etc/runlevels/*/"$s"; do [ -e "$l" ] && e=enabled; done
    else
      e=disabled
      for l in /etc/rc[2345S].d/S??"$s" /etc/rc.d/rc[35].d/S??"$s" /etc/service/"$s" /var/service/"$s" /run/runit/service/"$s"; do
        [ -e "$l" ] && e=enabled
      done
    fi
    printf '%s %s %s\n' "$s" "$a" "$e"
  done
fi
sec uid
u=
while read -r k a b l; do [ "$k" = Uid: ] && { u=$b; break; }; done </proc/self/status
[ -n "$u" ] || u=$(id -u)
printf '%s\n' "$u"
sec sudo
if [ "$u" != 0 ] && has sudo; then
  T=
  if timeout 1 true </dev/null; then T='timeout 5'; fi
  if o=$($T sudo -n true </dev/null 2>&1); then echo ok
  else
    o="fail $o"; o=${o%%"$nl"*}
    while [ "${#o}" -gt 256 ]; do o=${o%?}; done
    printf '%s\n' "$o"
  fi
fi
E=; [ -r /proc/1/environ ] && E=1
if has awk; then
  { has ip && ip -j addr show </dev/null; } | awk -v M="$M" -v E="$E" "$A" "$@" @procs /proc/[0-9]*/comm
  if [ $? = 3 ]; then
    sec ip-text
    { has ip && ip addr show </dev/null; } | awk -v TEXT=1 "$A"
  fi
else
  while [ $# -ge 3 ]; do sec "$1"; head -c "$2" "$3"; shift 3; done
  sec environ-container
  [ -n "$E" ] && tr '\000' '\n' </proc/1/environ | grep '^container=' | head -n 1 | head -c 256
  sec running
  cat /proc/[0-9]*/comm | grep -x -e firewalld -e NetworkManager -e systemd-networkd -e dhclient -e dhcpcd -e udhcpc | sort -u | head -n 16
  sec proc-mounts
  grep -e ' / ' -e ' /run ' /proc/mounts | head -n 16 | head -c 4096
  sec ip-json
  j=$(ip -j addr show </dev/null | head -c 1048576)
  if [ -n "$j" ]; then printf '%s\n' "$j"; else sec ip-text; ip addr show </dev/null | head -c 1048576; fi
fi
sec end
exit 0
`

// factsAwk is the awk program factsScript runs once. Its arguments are (section, byte
// cap, path) triples, then "@procs" and the /proc/PID/comm files; stdin is `ip -j addr`.
// It prints what head -c, grep and sort printed before, byte for byte, and exits 3 when
// ip printed nothing so the shell falls back to `ip addr`. With TEXT set it only caps
// stdin (that fallback). NUL: mawk and gawk keep NUL bytes in strings, so /proc/1/environ
// is split here; awks that cut strings at NUL (busybox) read it through tr instead.
const factsAwk = `function sec(h) { printf "\n%s %s\n", M, h }
function put(l) {
	if (left <= 0) return
	if (length(l) + 1 <= left) { print l; left -= length(l) + 1 }
	else { printf "%s", substr(l, 1, left); left = 0 }
}
function container(l) {
	if (found || l !~ /^container=/) return
	found = 1; left = 256; put(l)
}
BEGIN {
	if (TEXT) { left = 1048576; ARGC = 1; got = 1 } else collect()
}
function collect(   i, k, l, n, p, c, nul) {
	for (i = 1; i < ARGC && ARGV[i] != "@procs"; i += 3) {
		sec(ARGV[i]); left = ARGV[i + 1] + 0; p = ARGV[i + 2]
		while (left > 0 && (getline l < p) > 0) put(l)
		close(p)
	}
	for (i++; i < ARGC; i++) {
		while ((getline l < ARGV[i]) > 0) seen[l] = 1
		close(ARGV[i])
	}
	ARGC = 1
	sec("running")
	n = split("NetworkManager dhclient dhcpcd firewalld systemd-networkd udhcpc", w, " ")
	for (k = 1; k <= n; k++) if (w[k] in seen) print w[k]
	sec("environ-container")
	nul = sprintf("%c", 0)
	if (E != "" && nul != "") {
		while (!found && (getline l < "/proc/1/environ") > 0) {
			while ((k = index(l, nul)) > 0) { container(substr(l, 1, k - 1)); l = substr(l, k + 1) }
			container(l)
		}
		close("/proc/1/environ")
	} else if (E != "") {
		c = "tr \"\\000\" \"\\n\" </proc/1/environ"
		while (!found && (c | getline l) > 0) container(l)
		close(c)
	}
	sec("proc-mounts"); left = 4096; n = 0
	while (n < 16 && (getline l < "/proc/mounts") > 0)
		if (index(l, " / ") || index(l, " /run ")) { n++; put(l) }
	close("/proc/mounts")
	sec("ip-json"); left = 1048576
}
{ if ($0 != "") got = 1; put($0) }
END { if (!got) exit 3 }
`

// scriptFor returns the facts script with its section marker bound to nonce, so text a
// host stores in a file cannot forge a section by accident.
func scriptFor(nonce string) string {
	return scriptWithFiles(nonce, nil)
}

// extraFileCap bounds each extra file (a ruleset file can be large; a bigger one reads
// as changed, which is safe).
const extraFileCap = 1 << 20

// scriptWithFiles is the facts script that also prints each of files that is a
// readable regular file as section "xfile PATH", through the same awk: the state read
// of plan, audit and up gets its files without a process per file. awk prints every
// line with a newline, so a file's final newline cannot be told (see xfileContent).
func scriptWithFiles(nonce string, files []string) string {
	var b strings.Builder
	for _, p := range files {
		q := runner.Quote(p)
		b.WriteString("[ -f " + q + " ] && [ -r " + q + " ] && set -- \"$@\" " + runner.Quote("xfile "+p) + " " + strconv.Itoa(extraFileCap) + " " + q + "\n")
	}
	return strings.Replace(strings.Replace(factsScriptFull, "EXTRAFILES\n", b.String(), 1), "NONCE", nonce, 1)
}

// factsScriptFull is factsScript with factsAwk in place; factsAwk holds no single quote.
var factsScriptFull = strings.Replace(factsScript, "AWKPROG", factsAwk, 1)
