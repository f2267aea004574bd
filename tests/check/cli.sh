#!/bin/sh
# cli.sh WEFT: `weft check` usage errors print one line and exit 2; the
# program's own exit status and signals pass through when nothing is found.
set -u
weft=$1
fail=0
expect() { # expect STATUS LINES -- ARGS...
    want=$1 lines=$2; shift 3
    out=$("$weft" "$@" 2>&1 >/dev/null); st=$?
    n=$(printf '%s\n' "$out" | grep -c .)
    if [ "$st" != "$want" ]; then echo "weft $*: exit $st, expected $want"; fail=1; fi
    if [ "$lines" != any ] && [ "$n" != "$lines" ]; then echo "weft $*: $n lines on stderr, expected $lines: $out"; fail=1; fi
}
expect 2 1 -- check
expect 2 1 -- check --bogus
expect 2 1 -- check --output
expect 0 0 -- check -- true
expect 1 0 -- check -- false
expect 3 0 -- check -- sh -c 'exit 3'
expect 137 0 -- check -- sh -c 'kill -9 $$'
expect 127 1 -- check -- /nonexistent/program
"$weft" check --help | grep -q "usage: weft check" || { echo "--help shows no usage"; fail=1; }
exit $fail
