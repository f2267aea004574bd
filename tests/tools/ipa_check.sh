#!/bin/sh
# ipa_check.sh EXPECT GCC ARGS...
#
# Builds a lost-update program (ipa_repro.c or ipa_weft.c) with GCC ARGS...
# and runs it. The program exits 0 when no update was lost, 1 when some were.
#   EXPECT correct  no update may be lost (weft's locks must be immune)
#   EXPECT bug      the build is the known miscompiled shape: updates must be
#                   lost, which proves the harness sees the bug. If this gcc
#                   does not miscompile it, the test is skipped (77) with a
#                   note, since nothing can be proven either way.
# Exits 77 as well when gcc is not installed.
set -u
expect=$1 cc=$2
shift 2
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "gcc is not installed: skipping"
    exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "+ $cc $* -o prog"
if ! "$cc" "$@" -o "$dir/prog"; then
    echo "FAIL: could not build"
    exit 1
fi
"$dir/prog"
rc=$?
"$cc" --version | head -n 1
case $expect in
correct)
    [ "$rc" -eq 0 ] && { echo "PASS: no update lost"; exit 0; }
    echo "FAIL: updates were lost (exit status $rc)"
    exit 1
    ;;
bug)
    [ "$rc" -eq 1 ] && { echo "PASS: the miscompilation is reproduced and detected"; exit 0; }
    [ "$rc" -eq 0 ] && {
        echo "SKIP: this gcc did not lose updates in the known-bad shape;"
        echo "      the harness is not proven on this compiler"
        exit 77
    }
    echo "FAIL: unexpected exit status $rc"
    exit 1
    ;;
esac
echo "unknown expectation $expect" >&2
exit 2
