#!/bin/sh
# Re-extract the Debian scripts the arm tests run (see README.md).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
apt-get download initscripts ifupdown orphan-sysvinit-scripts runit openrc >/dev/null
for d in initscripts ifupdown orphan-sysvinit-scripts runit; do dpkg-deb -x ${d}_*.deb root; done
dpkg-deb -x openrc_*.deb openrc
cp root/etc/init.d/halt "$here/init.d-halt"
cp root/etc/default/halt "$here/default-halt"
cp root/etc/init.d/networking "$here/init.d-networking"
cp root/etc/default/networking "$here/default-networking"
cp root/usr/share/orphan-sysvinit-scripts/nftables "$here/init.d-nftables"
cp root/etc/runit/3 "$here/runit-3"
cp openrc/etc/rc.conf "$here/rc.conf"
