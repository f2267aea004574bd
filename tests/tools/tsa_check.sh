#!/bin/sh
# tsa_check.sh CLANG INCLUDE_DIR SOURCE [EXPECTED-DIAGNOSTIC]
#
# Compiles SOURCE with clang -Wthread-safety -Werror against weft's headers.
# Without EXPECTED-DIAGNOSTIC the file must compile cleanly (no output at
# all). With it, compilation must fail and the diagnostics must contain that
# exact text: a failure for another reason does not count.
# Exits 77 (CTest skip) when clang is not installed.
set -u
cc=$1 inc=$2 src=$3 want=${4:-}
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "clang is not installed: skipping"
    exit 77
fi
out=$("$cc" -fsyntax-only -std=gnu11 -Wall -Wextra -Wthread-safety -Werror -I"$inc" "$src" 2>&1)
rc=$?
printf '%s\n---- clang exit status %d\n' "$out" "$rc"
if [ -z "$want" ]; then
    if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
        echo "FAIL: expected a clean compile"
        exit 1
    fi
    echo "PASS: compiles cleanly under -Wthread-safety -Werror"
    exit 0
fi
if [ "$rc" -eq 0 ]; then
    echo "FAIL: compiled, but should have been rejected with: $want"
    exit 1
fi
if ! printf '%s\n' "$out" | grep -F -q -- "$want"; then
    echo "FAIL: rejected, but without the expected diagnostic: $want"
    exit 1
fi
if ! printf '%s\n' "$out" | grep -F -q -- "-Wthread-safety"; then
    echo "FAIL: the diagnostic does not come from -Wthread-safety"
    exit 1
fi
echo "PASS: rejected with: $want"
