#!/bin/sh
# Regenerates the *.json captures from the *.nft files with the real nft on this machine,
# each loaded in its own throwaway network namespace (needs root). base-traffic.json is
# base.nft after a few TCP connection attempts to port 80 from a peer namespace, so its counters are non-zero.
set -eu
cd "$(dirname "$0")"
for f in base reordered port extra_rule rules_swapped; do
	unshare -n sh -c "nft -f $f.nft && nft -j list ruleset" > "$f.json"
done
# Traffic from a second namespace over a veth (lo traffic is accepted before any counter).
a=hf-cap-a-$$ b=hf-cap-b-$$
ip netns add $a && ip netns add $b
trap 'ip netns del $a; ip netns del $b' EXIT
ip link add veth0 netns $a type veth peer name veth1 netns $b
ip -n $a addr add 10.99.0.1/24 dev veth0 && ip -n $a link set veth0 up
ip -n $b addr add 10.99.0.2/24 dev veth1 && ip -n $b link set veth1 up
ip netns exec $a nft -f base.nft
for i in 1 2 3; do ip netns exec $b nc -z -w 1 10.99.0.1 80 || true; done
ip netns exec $a nft -j list ruleset > base-traffic.json
nft --version > nft-version.txt
