#!/bin/sh
# real-program.sh WEFT NAME: runs a real multithreaded program that weft did
# not write under `weft check`; it must report nothing and behave exactly as
# without it (same output files). Skips (77) when the program is missing.
set -u
weft=$1 name=$2
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
# 16 MiB of compressible, deterministic text.
awk 'BEGIN { srand(7); for (i = 0; i < 400000; i++) printf "line %d %08x weft\n", i, int(rand() * 4294967295) }' >"$tmp/in"
check() { "$weft" check --output "$tmp/reports" -- "$@"; }
case $name in
pigz)
    command -v pigz >/dev/null || exit 77
    check pigz -p 2 -c "$tmp/in" >"$tmp/in.gz" && check pigz -p 2 -d -c "$tmp/in.gz" >"$tmp/out" ;;
xz)
    command -v xz >/dev/null || exit 77
    check xz -T2 -1 -c "$tmp/in" >"$tmp/in.xz" && check xz -T2 -d -c "$tmp/in.xz" >"$tmp/out" ;;
zstd)
    command -v zstd >/dev/null || exit 77
    check zstd -T2 -q -c "$tmp/in" >"$tmp/in.zst" && check zstd -T2 -q -d -c "$tmp/in.zst" >"$tmp/out" ;;
*) echo "unknown program $name"; exit 2 ;;
esac
st=$?
[ $st -eq 0 ] || { echo "$name under weft check exited $st"; cat "$tmp/reports" 2>/dev/null; exit 1; }
cmp -s "$tmp/in" "$tmp/out" || { echo "$name round trip changed the data"; exit 1; }
[ ! -s "$tmp/reports" ] || { echo "unexpected reports:"; cat "$tmp/reports"; exit 1; }
echo "$name: round trip identical, nothing reported"
