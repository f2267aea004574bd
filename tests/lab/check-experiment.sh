#!/bin/sh
# check-experiment.sh WEFT NAME: runs `WEFT lab --quick --json NAME` and
# checks the structure of the JSON document and the invariants that hold on
# any machine (never the timing-dependent verdict).
set -eu
weft=$1
name=$2
seed=${LAB_SEED:-12345}
mode=${LAB_MODE---quick} # LAB_MODE= (empty) runs the default budget
echo "seed $seed"
out=$("$weft" lab $mode --json --seed "$seed" "$name")

check() {
    if ! printf '%s\n' "$out" | jq -e "$1" >/dev/null; then
        echo "FAIL ($name, seed $seed): $1" >&2
        printf '%s\n' "$out" >&2
        exit 1
    fi
}

# The document: machine facts, one experiment, the contract's fields.
check '.machine.cpus >= 1 and (.machine.kernel | length > 0) and (.machine.compiler | length > 0)'
check ".seed == $seed and (.experiments | length) == 1"
check ".experiments[0].name == \"$name\" and (.experiments[0].claim | length > 20)"
check '.experiments[0].verdict == "reproduced" or .experiments[0].verdict == "not reproduced"'
check '.experiments[0].error == null and (.experiments[0].notes | length > 0)'
check '.experiments[0].metrics | length > 0 and all(.[]; type == "number")'
check '.experiments[0].table.rows | length > 0'

m='.experiments[0].metrics'
case $name in
race)
    check "$m | .lost_updates_mutex == 0 and .lost_updates_atomic == 0 and .lost_updates_cas == 0"
    check "$m | .lost_updates_unsynchronized >= 0 and .ns_per_op_unsynchronized > 0"
    check "$m | .ns_per_op_mutex > 0 and .ns_per_op_atomic > 0 and .ns_per_op_cas > 0"
    ;;
check-then-act)
    check "$m | .duplicates_guarded == 0 and .duplicates_atomic == 0 and .duplicates_unguarded >= 0"
    ;;
deadlock)
    check "$m | .naive_trials >= 1 and .naive_deadlocks <= .naive_trials"
    check "$m | .lock_all_completed == 2 * .rounds_per_thread"
    check "$m | .trylock_backoff_completed == 2 * .rounds_per_thread"
    check "$m | .timedlock_completed == 2 * .rounds_per_thread"
    check "$m | .lost_updates_lock_all == 0 and .lost_updates_trylock_backoff == 0"
    check "$m | .lost_updates_timedlock == 0"
    # The check layer saw the forced cycle (the report text is in check_report).
    check "$m | .check_reports >= 1"
    check '.experiments[0].check_report | test("==weft==")'
    ;;
livelock)
    check "$m | .polite_attempts_per_sec > 0 and .backoff_attempts_per_sec > 0"
    check "$m | .polite_successes_per_sec >= 0 and .backoff_successes_per_sec > 0"
    ;;
starvation)
    check "$m | .max_wait_ms_unfair > 0 and .max_wait_ms_fair > 0"
    # Starved or not, the occasional thread's every attempt ends (acquired or timed out).
    check "$m | .occasional_acquisitions_unfair + .occasional_timeouts_unfair >= 1"
    check "$m | .occasional_acquisitions_fair >= 1 and .greedy_threads >= 2"
    ;;
semaphore)
    check "$m | .max_in_flight_semaphore == .permits and .max_in_flight_mutex == 1"
    check "$m | .max_in_flight_unlimited <= .workers and .max_in_flight_unlimited >= 1"
    check "$m | .leak_permits_left == 0 and .leak_timeouts >= 1"
    check "$m | .check_reports >= 1"
    check '.experiments[0].check_report | test("==weft==")'
    ;;
ownership)
    check "$m | .mutex_foreign_unlock_refused == 1 and .mutex_still_held == 1"
    check "$m | .semaphore_foreign_release_allowed == 1"
    check "$m | .bug_permits_after_double_release == 2 and .bug_max_in_critical_section == 2"
    check "$m | .mutex_double_unlock_result < 0 and .mutex_max_in_critical_section == 1"
    check "$m | .mutex_lost_updates == 0"
    ;;
cas-vs-lock)
    check "$m | .lost_updates_mutex == 0 and .lost_updates_cas == 0 and .lost_updates_atomic == 0"
    check "$m | .ns_per_op_mutex_1t > 0 and .ns_per_op_cas_1t > 0 and .ns_per_op_atomic_1t > 0"
    check "$m | .cas_retries_per_success_peak >= 0"
    ;;
concurrency-vs-parallelism)
    check "$m | .threads >= 2 and .speedup_confined > 0 and .speedup_spread > 0"
    check "$m | .confined_first_finish_fraction > 0 and .confined_first_finish_fraction <= 1"
    ;;
memory-order)
    check "$m | .trials > 0 and .both_old_fenced == 0 and .both_old_relaxed >= 0"
    ;;
optimistic-vs-pessimistic)
    check "$m | .lost_updates_optimistic == 0 and .lost_updates_pessimistic == 0"
    check "$m | .updates_per_sec_optimistic_low > 0 and .updates_per_sec_pessimistic_high > 0"
    ;;
pool-starvation)
    # Never hangs: every parent finishes; the fixes run every child, no EDEADLK.
    check "$m | .shared_pool_timeouts == 0 and .shared_pool_parents_done == .rounds * .workers"
    check "$m | .bulkhead_edeadlk == 0 and .bulkhead_children_done == .rounds * .workers"
    check "$m | .inline_edeadlk == 0 and .inline_children_done == .rounds * .workers"
    check "$m | .shared_pool_edeadlk >= 1 and .check_reports >= 1"
    check '.experiments[0].check_report | test("pool-induced deadlock")'
    ;;
*)
    echo "FAIL: no invariants known for experiment '$name'" >&2
    exit 1
    ;;
esac
echo "ok: $name"
