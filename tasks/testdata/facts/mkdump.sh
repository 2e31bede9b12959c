#!/bin/sh
# mkdump.sh DIR: assemble DIR/dump.txt, the facts script's output for one host, from
# DIR/root/ (files exactly as the host holds them) and DIR/probes.txt (the other
# sections, already marked). Run from this directory: ./mkdump.sh debian12
set -eu
d=$1
M='@@hf:f1xture0'
{
  printf '\n%s begin\n' "$M"
  if [ -d "$d/root" ]; then
    (cd "$d/root" && find . -type f | LC_ALL=C sort) | while IFS= read -r p; do
      printf '\n%s file %s\n' "$M" "${p#.}"
      cat "$d/root/$p"
    done
  fi
  cat "$d/probes.txt"
} > "$d/dump.txt"
