exec 2>/dev/null
LC_ALL=C; export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH; export PATH
M='@@hf:NONCE'
T=
if timeout 1 true </dev/null; then T='timeout 5'; fi
sec() { printf '\n%s %s\n' "$M" "$*"; }
has() { command -v "$1" >/dev/null; }
f() { for p in "$@"; do if [ -f "$p" ] && [ -r "$p" ]; then sec file "$p"; head -c 65536 "$p"; fi; done; }
sec begin
f /etc/os-release /usr/lib/os-release /etc/redhat-release /etc/debian_version \
  /etc/alpine-release /etc/arch-release /proc/1/comm /run/container_type \
  /run/systemd/container /etc/firewalld/firewalld.conf /etc/ufw/ufw.conf \
  /proc/net/ip_tables_names /etc/network/interfaces
ls /etc/network/interfaces.d | head -n 16 | while IFS= read -r p; do f "/etc/network/interfaces.d/$p"; done
[ -r /proc/1/comm ] || { sec pid1-stat; head -c 256 /proc/1/stat; }
sec uname
{ uname -r; uname -m; } | head -n 2 | head -c 320
sec exists
for p in /run/systemd/system /run/openrc /run/runit /etc/runit /.dockerenv /run/.containerenv /etc/netplan/*.yaml; do
  [ -e "$p" ] && printf '%s\n' "$p"
done | head -n 64
sec pid1-exe
{ readlink /proc/1/exe || ls -l /proc/1/exe; } | head -n 1 | head -c 4096
sec sbin-init
{ readlink -f /sbin/init || ls -l /sbin/init; } | head -n 1 | head -c 4096
sec environ-container
if [ -r /proc/1/environ ]; then tr '\000' '\n' </proc/1/environ | grep '^container=' | head -n 1 | head -c 256; fi
sec detect-virt
if has systemd-detect-virt; then $T systemd-detect-virt -c </dev/null | head -c 256; fi
sec which
for c in nft iptables ip ifup systemctl findmnt sudo firewall-cmd ufw netplan; do
  p=$(command -v "$c") && printf '%s %s\n' "$c" "$p"
done | head -c 8192
sec iptables-version
if has iptables; then $T iptables -V </dev/null | head -n 1 | head -c 256; fi
sec services
for s in firewalld ufw nftables systemd-networkd NetworkManager networking; do
  a=unknown; e=unknown
  if [ -d /run/systemd/system ] && has systemctl; then
    a=$($T systemctl is-active "$s.service" </dev/null | head -n 1 | head -c 32)
    e=$($T systemctl is-enabled "$s.service" </dev/null | head -n 1 | head -c 32)
  elif [ -d /run/openrc ]; then
    a=inactive; [ -e "/run/openrc/started/$s" ] && a=active
    e=disabled; for l in /etc/runlevels/*/"$s"; do [ -e "$l" ] && e=enabled; done
  else
    e=disabled
    for l in /etc/rc[2345S].d/S??"$s" /etc/rc.d/rc[35].d/S??"$s" /etc/service/"$s" /var/service/"$s" /run/runit/service/"$s"; do
      [ -e "$l" ] && e=enabled
    done
  fi
  printf '%s %s %s\n' "$s" "${a:-unknown}" "${e:-unknown}"
done
sec running
cat /proc/[0-9]*/comm | grep -x -e firewalld -e NetworkManager -e systemd-networkd -e dhclient -e dhcpcd -e udhcpc | sort -u | head -n 16
sec ip-json
j=$($T ip -j addr show </dev/null | head -c 1048576)
if [ -n "$j" ]; then printf '%s\n' "$j"; else sec ip-text; $T ip addr show </dev/null | head -c 1048576; fi
if has findmnt; then sec run-mount; findmnt -no OPTIONS -T /run | head -n 1 | head -c 1024
else sec proc-mounts; grep -e ' / ' -e ' /run ' /proc/mounts | head -n 16 | head -c 4096; fi
sec uid
id -u
sec sudo
if [ "$(id -u)" != 0 ] && has sudo; then
  if o=$($T sudo -n true </dev/null 2>&1); then echo ok; else printf 'fail %s\n' "$o" | head -n 1 | head -c 256; fi
fi
sec end
exit 0
