#!/bin/sh
# run-case.sh MODE WEFT PROGRAM SOURCE
# Runs one corpus program and compares what the check layer reported with
# the expectations written in its source:
#   // expect: KIND...      report kinds that must appear (or: silent)
#   // forbid: KIND...      report kinds that must not appear
#   // env: VAR=VALUE...    environment for the run (e.g. a lower threshold)
#   // exit: N              the exit status the run must end with (default 0;
#                           66 under weft check when something is reported)
# MODE "preload": unmodified pthread program under `weft check --json`.
# MODE "weft": a program on weft's own primitives, with WEFT_CHECK=1.
set -u
mode=$1 weft=$2 prog=$3 src=$4
out=$(mktemp) || exit 2
trap 'rm -f "$out"' EXIT
# The corpus inverts lock orders on purpose; in ThreadSanitizer builds its
# own deadlock detector would report them too (weft's is under test here).
TSAN_OPTIONS="detect_deadlocks=0 ${TSAN_OPTIONS:-}"
export TSAN_OPTIONS
expect=$(sed -n 's@^// expect: *@@p' "$src")
forbid=$(sed -n 's@^// forbid: *@@p' "$src")
for kv in $(sed -n 's@^// env: *@@p' "$src"); do
    export "$kv"
done
want_exit=$(sed -n 's@^// exit: *@@p' "$src")
[ -n "$expect" ] || { echo "no '// expect:' line in $src"; exit 2; }
if [ "$mode" = preload ]; then
    "$weft" check --json --output "$out" -- "$prog" >/dev/null 2>&1
    st=$?
    [ -n "$want_exit" ] || { [ "$expect" = silent ] && want_exit=0 || want_exit=66; }
else
    WEFT_CHECK=1 WEFT_CHECK_FORMAT=json WEFT_CHECK_OUTPUT="$out" WEFT_CHECK_ON_DEADLOCK=exit \
        "$prog" >/dev/null 2>&1
    st=$?
    [ -n "$want_exit" ] || want_exit=0
fi
got=$(sed -n 's/^{"kind":"\([a-z-]*\)".*/\1/p' "$out" | sort -u | tr '\n' ' ')
fail=0
if [ "$expect" = silent ]; then
    [ -z "$got" ] || { echo "expected silence, got: $got"; fail=1; }
else
    for k in $expect; do
        case " $got " in *" $k "*) ;; *) echo "missing report: $k (got: ${got:-nothing})"; fail=1;; esac
    done
fi
for k in $forbid; do
    case " $got " in *" $k "*) echo "unexpected report: $k"; fail=1;; esac
done
[ "$st" = "$want_exit" ] || { echo "exit status $st, expected $want_exit"; fail=1; }
if [ $fail -ne 0 ]; then
    echo "--- reports:"; cat "$out"
fi
exit $fail
