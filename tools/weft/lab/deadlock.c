/*
 * deadlock.c - the `deadlock` experiment: two threads taking two locks in
 * opposite orders deadlock; the check layer reports the cycle; one global
 * order (weft_mutex_lock_all), try-lock with back-off and a timed lock each
 * let them complete.
 *
 * The naive run forces the fatal interleaving: each thread takes its first
 * lock, both meet at a gate, then each asks for the other's lock. Nothing
 * can hang, because the second acquisition is a timed lock: a deadlock shows
 * as both threads waiting out the whole timeout, which is what we count.
 *
 * The fixes then run the same opposite-order pattern many times at full
 * speed, each with a hard time bound, and must finish with a shared counter
 * (incremented while holding both locks) that lost nothing. The try-lock
 * and timed-lock fixes back off with weft_backoff after a failure.
 *
 * Last, one naive trial runs with the check layer on (after the fixes,
 * because checking slows every lock operation): its wait-for walk finds the
 * cycle, the timed lock returns -EDEADLK instead of waiting on, and the
 * report is shown.
 *
 * Verdict: reproduced when at least one unchecked naive trial deadlocked
 * (both timed out), every fix completed all its rounds without a lost
 * update, and the check layer reported the deadlock.
 */
#include <stdio.h>

#include "weft.h"
#include "lab/lab.h"

enum fix { F_NAIVE, F_LOCK_ALL, F_TRYLOCK, F_TIMED, F_CHECKED, F_COUNT };
static const char *const fix_name[F_COUNT] = {"naive", "lock_all", "trylock_backoff", "timedlock",
                                              "naive_checked"};

struct dl_shared {
    enum fix fix;
    weft_mutex_t a, b;
    struct weft_lab_gate gate;
    int64_t timeout_ns; /* naive: how long a thread waits for its second lock */
    uint64_t rounds;
    uint64_t counter;   /* protected by a and b together */
    unsigned trial_to;  /* atomic: failed second acquisitions in this naive trial */
    uint64_t deadlocks; /* naive trials where both failed; written by worker 0 */
};

struct dl_worker {
    struct dl_shared *sh;
    weft_mutex_t *first, *second;
    uint64_t seed;
    uint64_t timeouts, edeadlk, retries, done;
};

/*
 * One naive trial: first lock, meet, then a timed wait for the second. Both
 * threads keep their first lock until both have finished waiting (the second
 * gate), exactly as two threads without a timeout would: so when the cycle
 * forms, both wait out the whole timeout (or are told -EDEADLK by the check
 * layer).
 */
static void naive_trial(struct dl_worker *w) WEFT_NO_THREAD_SAFETY_ANALYSIS
{
    struct dl_shared *sh = w->sh;
    weft_mutex_lock(w->first);
    weft_lab_gate_wait(&sh->gate);
    int rc = weft_mutex_timedlock(w->second, sh->timeout_ns);
    if (rc == 0) {
        w->done++;
        weft_mutex_unlock(w->second);
    } else {
        w->timeouts += rc == -ETIMEDOUT;
        w->edeadlk += rc == -EDEADLK;
        __atomic_fetch_add(&sh->trial_to, 1, __ATOMIC_RELAXED);
    }
    weft_lab_gate_wait(&sh->gate); /* both done waiting: the count is final */
    weft_mutex_unlock(w->first);
    if (w->first == &sh->a) {
        /* Relaxed: the gate ordered both increments before this load. */
        sh->deadlocks += __atomic_load_n(&sh->trial_to, __ATOMIC_RELAXED) == 2;
        __atomic_store_n(&sh->trial_to, 0, __ATOMIC_RELAXED);
    }
    weft_lab_gate_wait(&sh->gate); /* reset before the next trial */
}

/* Take both locks with the selected fix; returns with both held. */
static void take_both(struct dl_worker *w, weft_backoff_t *b) WEFT_NO_THREAD_SAFETY_ANALYSIS
{
    weft_mutex_t *set[2] = {w->first, w->second};
    if (w->sh->fix == F_LOCK_ALL) {
        weft_mutex_lock_all(set, 2);
        return;
    }
    for (;;) {
        weft_mutex_lock(w->first);
        int rc = w->sh->fix == F_TRYLOCK ? weft_mutex_trylock(w->second)
                                         : weft_mutex_timedlock(w->second, 100000);
        if (rc == 0) {
            weft_backoff_reset(b);
            return;
        }
        weft_mutex_unlock(w->first);
        w->retries++;
        w->timeouts += rc == -ETIMEDOUT;
        weft_backoff_pause(b);
    }
}

static void *dl_thread(void *arg) WEFT_NO_THREAD_SAFETY_ANALYSIS
{
    struct dl_worker *w = arg;
    weft_mutex_t *set[2] = {w->first, w->second};
    weft_backoff_t b;
    weft_backoff_init(&b, w->seed);
    for (uint64_t r = 0; r < w->sh->rounds; r++) {
        if (w->sh->fix == F_NAIVE || w->sh->fix == F_CHECKED) {
            naive_trial(w);
            continue;
        }
        take_both(w, &b);
        w->sh->counter++;
        w->done++;
        weft_mutex_unlock_all(set, 2);
    }
    return NULL;
}

struct dl_outcome {
    uint64_t done, timeouts, edeadlk, retries, lost;
    double ms;
};

static int run_fix(struct dl_shared *sh, enum fix f, uint64_t seed, struct dl_outcome *o)
{
    struct dl_worker w[2] = {{sh, &sh->a, &sh->b, weft_lab_mix(seed), 0, 0, 0, 0},
                             {sh, &sh->b, &sh->a, weft_lab_mix(seed + 1), 0, 0, 0, 0}};
    sh->fix = f;
    sh->counter = 0;
    sh->deadlocks = 0;
    weft_lab_gate_init(&sh->gate, 2);
    uint64_t t0 = weft_now_ns();
    int rc = weft_lab_run_threads(2, dl_thread, w, sizeof w[0], 20000000000LL);
    if (rc != 0)
        return rc;
    o->ms = (double)(weft_now_ns() - t0) / 1e6;
    o->done = w[0].done + w[1].done;
    o->timeouts = w[0].timeouts + w[1].timeouts;
    o->edeadlk = w[0].edeadlk + w[1].edeadlk;
    o->retries = w[0].retries + w[1].retries;
    o->lost = f == F_NAIVE || f == F_CHECKED ? 0 : 2 * sh->rounds - sh->counter;
    return 0;
}

static void record(struct weft_lab_ctx *ctx, enum fix f, const struct dl_outcome *o)
{
    char key[64];
    snprintf(key, sizeof key, "%s_completed", fix_name[f]);
    weft_lab_metric(ctx, key, (double)o->done);
    snprintf(key, sizeof key, "%s_timeouts", fix_name[f]);
    weft_lab_metric(ctx, key, (double)o->timeouts);
    snprintf(key, sizeof key, "%s_retries", fix_name[f]);
    weft_lab_metric(ctx, key, (double)o->retries);
    snprintf(key, sizeof key, "%s_ms", fix_name[f]);
    weft_lab_metric(ctx, key, o->ms);
    if (f == F_CHECKED)
        weft_lab_metric(ctx, "naive_checked_edeadlk", (double)o->edeadlk);
    else if (f != F_NAIVE) {
        snprintf(key, sizeof key, "lost_updates_%s", fix_name[f]);
        weft_lab_metric(ctx, key, (double)o->lost);
    }
    weft_lab_row(ctx, fix_name[f], (double)o->done, (double)o->timeouts, (double)o->edeadlk,
                 (double)o->retries, o->ms);
}

static void explain(struct weft_lab_ctx *ctx, uint64_t trials, uint64_t deadlocks, bool fixed,
                    unsigned reports, const struct dl_outcome *checked)
{
    weft_lab_note(ctx,
                  "Naive: in %llu of %llu trials both threads held one lock and timed "
                  "out waiting for the other: without the timeout they would wait forever.",
                  (unsigned long long)deadlocks, (unsigned long long)trials);
    weft_lab_note(ctx, fixed ? "Each fix completed every round with no lost update: one global "
                               "order makes the cycle impossible; try-lock and timed lock break "
                               "it by backing off (weft_backoff) and retrying."
                             : "A fix did not complete every round cleanly: see the table.");
    if (reports > 0)
        weft_lab_note(ctx,
                      "With the check layer on, the same interleaving was reported (%u "
                      "report%s, shown above) and %llu timed lock%s returned EDEADLK "
                      "instead of waiting out the timeout.",
                      reports, reports == 1 ? "" : "s", (unsigned long long)checked->edeadlk,
                      checked->edeadlk == 1 ? "" : "s");
    else
        weft_lab_note(ctx, "With the check layer on, no report was made: the check layer "
                           "missed the cycle.");
}

/* The unchecked runs, then the checked trial. */
static int run_all(struct weft_lab_ctx *ctx, struct dl_shared *sh, uint64_t trials,
                   struct dl_outcome o[])
{
    for (int f = 0; f < F_COUNT; f++) {
        sh->rounds = f == F_NAIVE ? trials : f == F_CHECKED ? 1 : weft_lab_scale(ctx, 50000);
        if (f == F_CHECKED) {
            /* Long enough for the wait-for walk (two 50 ms slices). */
            sh->timeout_ns = 1000000000;
            weft_lab_check_begin(ctx);
            weft_mutex_init(&sh->a, "deadlock.a"); /* new lives, known to the checker */
            weft_mutex_init(&sh->b, "deadlock.b");
        }
        int rc = run_fix(sh, (enum fix)f, ctx->seed + 2 * (uint64_t)f, &o[f]);
        if (rc != 0)
            return weft_lab_fail(ctx, rc, "%s did not complete within its bound", fix_name[f]);
        if (f == F_NAIVE)
            weft_lab_metric(ctx, "naive_deadlocks", (double)sh->deadlocks);
        record(ctx, (enum fix)f, &o[f]);
    }
    return 0;
}

static int dl_run(struct weft_lab_ctx *ctx)
{
    static struct dl_shared sh;
    weft_mutex_init(&sh.a, "deadlock.a");
    weft_mutex_init(&sh.b, "deadlock.b");
    static const char *const cols[] = {"completed", "timeouts", "EDEADLK", "retries", "ms"};
    weft_lab_table(ctx, "two threads, two locks, opposite orders", 5, cols);
    uint64_t trials = ctx->mode == WEFT_LAB_QUICK ? 2 : ctx->mode == WEFT_LAB_FULL ? 10 : 4;
    sh.timeout_ns = (int64_t)weft_lab_budget_ns(ctx, 200);
    weft_lab_metric(ctx, "naive_timeout_ms", (double)sh.timeout_ns / 1e6);
    struct dl_outcome o[F_COUNT];
    int rc = run_all(ctx, &sh, trials, o);
    if (rc != 0)
        return rc;
    unsigned reports = weft_lab_check_collect(ctx);
    uint64_t rounds = weft_lab_scale(ctx, 50000);
    bool fixed = true;
    for (int f = F_LOCK_ALL; f <= F_TIMED; f++)
        fixed = fixed && o[f].done == 2 * rounds && o[f].lost == 0;
    uint64_t deadlocks = (uint64_t)weft_lab_get(ctx, "naive_deadlocks", 0);
    weft_lab_metric(ctx, "naive_trials", (double)trials);
    weft_lab_metric(ctx, "rounds_per_thread", (double)rounds);
    weft_lab_plot(ctx, WEFT_LAB_PLOT_BARS, 1u << 4, true, "variant", "milliseconds");
    bool reported =
        weft_lab_check_count("deadlock") + weft_lab_check_count("lock-order-inversion") > 0;
    weft_lab_verdict(ctx, deadlocks >= 1 && fixed && reported);
    explain(ctx, trials, deadlocks, fixed, reports, &o[F_CHECKED]);
    return 0;
}

const struct weft_lab_experiment weft_lab_deadlock = {
    "deadlock",
    "Two threads taking two locks in opposite orders deadlock, and the check layer reports the "
    "cycle; one global lock order, try-lock with back-off, or a timed lock each make them "
    "complete.",
    dl_run,
};
