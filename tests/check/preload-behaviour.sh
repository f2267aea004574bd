#!/bin/sh
# preload-behaviour.sh WEFT PROGRAM: the program's output and exit status
# must be the same plain and under `weft check`, and nothing reported.
set -u
weft=$1 prog=$2
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
"$prog" >"$tmp/plain" 2>&1; st1=$?
"$weft" check --output "$tmp/reports" -- "$prog" >"$tmp/checked" 2>&1; st2=$?
fail=0
if ! cmp -s "$tmp/plain" "$tmp/checked"; then
    echo "output differs:"; diff "$tmp/plain" "$tmp/checked"; fail=1
fi
[ "$st1" = "$st2" ] || { echo "exit status $st2 under weft check, $st1 plain"; fail=1; }
[ ! -s "$tmp/reports" ] || { echo "unexpected reports:"; cat "$tmp/reports"; fail=1; }
[ "$st1" = 3 ] || { echo "plain run exited $st1, expected 3"; fail=1; }
exit $fail
