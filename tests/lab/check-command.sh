#!/bin/sh
# check-command.sh WEFT CASE: the command around the experiments: usage
# errors (exit 2, exactly one line on stderr, nothing on stdout), --list,
# --report with and without gnuplot, and that check-experiment.sh catches a
# deliberately broken experiment (WEFT_LAB_BROKEN).
set -eu
weft=$1
case_=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "FAIL ($case_): $*" >&2
    exit 1
}

# usage ARGS...: the command must refuse ARGS with status 2 and one line.
usage() {
    set +e
    "$weft" lab "$@" >"$tmp/out" 2>"$tmp/err"
    st=$?
    set -e
    [ "$st" -eq 2 ] || fail "weft lab $* exited $st, expected 2"
    [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "weft lab $*: stderr is not one line: $(cat "$tmp/err")"
    [ ! -s "$tmp/out" ] || fail "weft lab $*: wrote to stdout"
    echo "ok: weft lab $* -> $(cat "$tmp/err")"
}

case $case_ in
usage)
    usage --no-such-option
    usage no-such-experiment
    usage --seed
    usage --seed abc
    usage --seed -3
    usage --quick --full
    usage --report
    usage race --report=
    ;;
list)
    "$weft" lab --list >"$tmp/list"
    for n in race check-then-act deadlock livelock starvation semaphore ownership cas-vs-lock \
        concurrency-vs-parallelism pool-starvation memory-order optimistic-vs-pessimistic; do
        grep -q "^$n " "$tmp/list" || fail "--list does not name $n"
    done
    [ "$(wc -l <"$tmp/list")" -ge 12 ] || fail "--list too short"
    "$weft" lab --help | grep -q '^usage: weft lab' || fail "--help"
    ;;
text)
    "$weft" lab --quick --seed 7 race memory-order >"$tmp/out"
    grep -q '^weft lab .*seed 7' "$tmp/out" || fail "seed not printed"
    grep -q '^machine: ' "$tmp/out" || fail "machine facts missing"
    [ "$(grep -c '^verdict: ' "$tmp/out")" -eq 2 ] || fail "expected two verdict lines"
    grep -q '^claim: ' "$tmp/out" || fail "claim missing"
    ;;
report)
    "$weft" lab --quick --report "$tmp/rep" race cas-vs-lock >/dev/null
    [ -s "$tmp/rep/index.html" ] || fail "no index.html"
    grep -q '<table>' "$tmp/rep/index.html" || fail "no table"
    if command -v gnuplot >/dev/null; then
        [ -s "$tmp/rep/race.svg" ] || fail "no race.svg although gnuplot is installed"
        grep -q '<svg' "$tmp/rep/cas-vs-lock.svg" || fail "cas-vs-lock.svg is not SVG"
        grep -q 'cas-vs-lock.svg' "$tmp/rep/index.html" || fail "plot not on the page"
    fi
    ;;
report-without-gnuplot)
    # A PATH without gnuplot: the page must say so and keep the tables.
    mkdir "$tmp/bin"
    PATH="$tmp/bin" "$weft" lab --quick --report "$tmp/rep" race >/dev/null
    grep -q 'gnuplot was not found' "$tmp/rep/index.html" || fail "no gnuplot notice"
    grep -q '<table>' "$tmp/rep/index.html" || fail "no table"
    [ ! -e "$tmp/rep/race.svg" ] || fail "an SVG appeared without gnuplot"
    ;;
hard-limit)
    # An experiment that outlives its hard limit is killed and reported as
    # an error: exit 1, verdict "not reproduced", the others still run.
    set +e
    WEFT_LAB_LIMIT_MS=300 "$weft" lab --json cas-vs-lock ownership >"$tmp/out" 2>"$tmp/err"
    st=$?
    set -e
    [ "$st" -eq 1 ] || fail "expected exit 1 after a kill, got $st"
    jq -e '.experiments[0].error | test("hard limit")' "$tmp/out" >/dev/null ||
        fail "no hard-limit error: $(cat "$tmp/out")"
    jq -e '.experiments[0].verdict == "not reproduced"' "$tmp/out" >/dev/null ||
        fail "a killed experiment must not be reproduced"
    # The next one ran too (on a busy machine it may also hit so short a limit).
    jq -e '.experiments[1].name == "ownership" and .experiments[1].seconds > 0' \
        "$tmp/out" >/dev/null || fail "the next experiment did not run"
    ;;
broken-race | broken-semaphore)
    # The harness must catch a deliberately broken run: check-experiment.sh
    # has to fail, naming the invariant that broke.
    exp=${case_#broken-}
    want=$([ "$exp" = race ] && echo lost_updates_mutex || echo max_in_flight_semaphore)
    # A broken lock shows only when the threads overlap, which on a busy
    # machine is not certain in one run: up to three runs, the default budget.
    for attempt in 1 2 3; do
        set +e
        WEFT_LAB_BROKEN=1 LAB_SEED=$attempt LAB_MODE= \
            sh "$(dirname "$0")/check-experiment.sh" "$weft" "$exp" >"$tmp/out" 2>"$tmp/err"
        st=$?
        set -e
        [ "$st" -eq 0 ] || break
    done
    [ "$st" -eq 1 ] || fail "the broken $exp run was not caught in 3 runs (status $st)"
    grep -q "^FAIL ($exp.*$want" "$tmp/err" || fail "caught, but not by $want: $(head -1 "$tmp/err")"
    echo "ok: broken $exp caught: $(head -1 "$tmp/err")"
    ;;
*)
    fail "unknown case"
    ;;
esac
echo "ok: $case_"
