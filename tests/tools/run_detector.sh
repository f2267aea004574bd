#!/bin/sh
# run_detector.sh TOOL EXPECT PROGRAM
#
# Runs PROGRAM (built from counter_prog.c) under a race detector and checks
# the verdict:
#   TOOL    tsan      PROGRAM was built with -fsanitize=thread
#           helgrind  PROGRAM is a plain build, run under valgrind --tool=helgrind
#   EXPECT  clean     no race may be reported, and the program's results are right
#           racy      a data race on `counter` must be reported
# Exits 0 when the expectation holds, 1 when it does not, 77 (CTest skip)
# when the tool is not installed.
set -u
tool=$1 expect=$2 prog=$3
out=$(mktemp)
trap 'rm -f "$out"' EXIT

case $tool in
tsan)
    TSAN_OPTIONS="halt_on_error=0 exitcode=66 history_size=4" "$prog" >"$out" 2>&1
    rc=$?
    race='WARNING: ThreadSanitizer: data race'
    where="global 'counter'"
    ;;
helgrind)
    if ! command -v valgrind >/dev/null 2>&1; then
        echo "valgrind is not installed: skipping"
        exit 77
    fi
    valgrind --tool=helgrind --error-exitcode=66 "$prog" >"$out" 2>&1
    rc=$?
    race='Possible data race'
    where='data symbol "counter"'
    ;;
*)
    echo "unknown tool $tool" >&2
    exit 2
    ;;
esac

cat "$out"
echo "---- $tool exit status $rc"
case $expect in
clean)
    if grep -q "$race" "$out"; then
        echo "FAIL: $tool reported a race in the correctly locked program"
        exit 1
    fi
    if [ "$rc" -ne 0 ]; then
        echo "FAIL: exit status $rc (expected 0)"
        exit 1
    fi
    if ! grep -q 'counter 8000 (expected 8000), baton 300 (expected 300)' "$out"; then
        echo "FAIL: wrong results"
        exit 1
    fi
    if [ "$tool" = helgrind ] && ! grep -q 'ERROR SUMMARY: 0 errors' "$out"; then
        echo "FAIL: helgrind reported errors"
        exit 1
    fi
    echo "PASS: $tool is silent on the correctly locked program"
    ;;
racy)
    if ! grep -q "$race" "$out" || ! grep -q "$where" "$out"; then
        echo "FAIL: $tool did not report the race on counter"
        exit 1
    fi
    if [ "$rc" -ne 66 ]; then
        echo "FAIL: exit status $rc (expected the tool's error status 66)"
        exit 1
    fi
    echo "PASS: $tool reported the race on counter"
    ;;
*)
    echo "unknown expectation $expect" >&2
    exit 2
    ;;
esac
