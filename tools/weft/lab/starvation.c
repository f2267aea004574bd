/*
 * starvation.c - the `starvation` experiment: with an unfair lock, greedy
 * threads that release and immediately re-take it can keep an occasional
 * thread waiting for a long time; a fair (FIFO) lock bounds its wait to the
 * queue ahead of it.
 *
 * Greedy threads loop: lock, hold it for a short critical section, unlock,
 * and at once lock again. One occasional thread sleeps a millisecond, then
 * asks for the lock and records how long it waited. Every acquisition is
 * counted per thread, giving each thread's share. The occasional thread
 * waits with a timed lock, so even total starvation ends (as a timeout,
 * counted as a wait of the full timeout).
 *
 * Verdict: reproduced when the occasional thread's mean wait under the
 * unfair weft_mutex is at least 5 times its mean wait under weft_fairlock,
 * and its longest wait is longer too. (The mean is the robust measure: a
 * single longest wait on a shared machine is dominated by scheduling noise,
 * for the fair lock as much as for the unfair one.)
 */
#include <stdio.h>
#include <stdlib.h>

#include "internal/base.h"
#include "weft.h"
#include "lab/lab.h"

#define CS_NS 10000u /* greedy critical section: long enough that waiting matters */
#define MAX_GREEDY 8

struct st_shared {
    bool fair;
    weft_mutex_t mu;
    weft_fairlock_t fl;
    uint64_t budget_ns;
    int64_t cap_ns; /* longest the occasional thread waits */
    unsigned stop;  /* atomic: raised by the occasional thread when done */
    struct weft_lab_gate gate;
};

struct st_worker {
    struct st_shared *sh;
    bool occasional;
    uint64_t acquisitions, timeouts, max_wait, total_wait;
} __attribute__((aligned(64)));

static void spin(uint64_t ns)
{
    for (uint64_t t0 = weft_now_ns(); weft_now_ns() - t0 < ns;)
        weft__cpu_relax();
}

static int st_lock(struct st_shared *sh, int64_t timeout) WEFT_NO_THREAD_SAFETY_ANALYSIS
{
    return sh->fair ? weft_fairlock_timedlock(&sh->fl, timeout)
                    : weft_mutex_timedlock(&sh->mu, timeout);
}

static void st_unlock(struct st_shared *sh) WEFT_NO_THREAD_SAFETY_ANALYSIS
{
    if (sh->fair)
        weft_fairlock_unlock(&sh->fl);
    else
        weft_mutex_unlock(&sh->mu);
}

static void greedy(struct st_worker *w)
{
    struct st_shared *sh = w->sh;
    /* Relaxed: the flag carries no data; the counts are read after join. */
    while (!__atomic_load_n(&sh->stop, __ATOMIC_RELAXED)) {
        if (st_lock(sh, 100000000) != 0)
            continue;
        w->acquisitions++;
        spin(CS_NS);
        st_unlock(sh);
    }
}

static void occasional(struct st_worker *w)
{
    struct st_shared *sh = w->sh;
    uint64_t deadline = weft_now_ns() + sh->budget_ns;
    while (weft_now_ns() < deadline) {
        weft_lab_sleep_ns(1000000);
        uint64_t t0 = weft_now_ns();
        int rc = st_lock(sh, sh->cap_ns);
        uint64_t waited = weft_now_ns() - t0;
        w->max_wait = waited > w->max_wait ? waited : w->max_wait;
        w->total_wait += waited;
        if (rc != 0) {
            w->timeouts++;
            continue;
        }
        w->acquisitions++;
        st_unlock(sh);
    }
    __atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
}

static void *st_thread(void *arg)
{
    struct st_worker *w = arg;
    weft_lab_gate_wait(&w->sh->gate);
    if (w->occasional)
        occasional(w);
    else
        greedy(w);
    return NULL;
}

struct st_outcome {
    double max_wait_ms, mean_wait_us, occasional_n, timeouts, share_min, share_max, occ_share;
};

static void summarise(const struct st_worker *w, unsigned n, struct st_outcome *o)
{
    uint64_t total = 0, lo = UINT64_MAX, hi = 0;
    for (unsigned i = 0; i < n; i++)
        total += w[i].acquisitions;
    for (unsigned i = 1; i < n; i++) {
        lo = w[i].acquisitions < lo ? w[i].acquisitions : lo;
        hi = w[i].acquisitions > hi ? w[i].acquisitions : hi;
    }
    uint64_t tries = w[0].acquisitions + w[0].timeouts;
    o->max_wait_ms = (double)w[0].max_wait / 1e6;
    o->mean_wait_us = tries ? (double)w[0].total_wait / (double)tries / 1e3 : 0;
    o->occasional_n = (double)w[0].acquisitions;
    o->timeouts = (double)w[0].timeouts;
    o->share_min = total ? 100.0 * (double)lo / (double)total : 0;
    o->share_max = total ? 100.0 * (double)hi / (double)total : 0;
    o->occ_share = total ? 100.0 * (double)w[0].acquisitions / (double)total : 0;
}

static int run_lock(struct st_shared *sh, bool fair, unsigned greedy_n, struct st_outcome *o)
{
    static struct st_worker w[MAX_GREEDY + 1];
    unsigned n = greedy_n + 1;
    sh->fair = fair;
    sh->stop = 0;
    weft_lab_gate_init(&sh->gate, n);
    for (unsigned i = 0; i < n; i++)
        w[i] = (struct st_worker){.sh = sh, .occasional = i == 0};
    int rc = weft_lab_run_threads(n, st_thread, w, sizeof w[0], 60000000000LL);
    if (rc != 0)
        return rc;
    summarise(w, n, o);
    return 0;
}

static void record(struct weft_lab_ctx *ctx, const char *lock, const struct st_outcome *o)
{
    char key[64];
    snprintf(key, sizeof key, "max_wait_ms_%s", lock);
    weft_lab_metric(ctx, key, o->max_wait_ms);
    snprintf(key, sizeof key, "mean_wait_us_%s", lock);
    weft_lab_metric(ctx, key, o->mean_wait_us);
    snprintf(key, sizeof key, "occasional_acquisitions_%s", lock);
    weft_lab_metric(ctx, key, o->occasional_n);
    snprintf(key, sizeof key, "occasional_timeouts_%s", lock);
    weft_lab_metric(ctx, key, o->timeouts);
    snprintf(key, sizeof key, "occasional_share_pct_%s", lock);
    weft_lab_metric(ctx, key, o->occ_share);
    snprintf(key, sizeof key, "greedy_share_min_pct_%s", lock);
    weft_lab_metric(ctx, key, o->share_min);
    snprintf(key, sizeof key, "greedy_share_max_pct_%s", lock);
    weft_lab_metric(ctx, key, o->share_max);
    weft_lab_row(ctx, lock, o->max_wait_ms, o->mean_wait_us, o->occasional_n, o->share_min,
                 o->share_max);
}

/*
 * A last, short unfair run with the check layer on and its starvation
 * threshold at 5 ms (unless the environment sets one): when the occasional
 * thread's wait passes it while the greedy threads keep acquiring, the check
 * layer reports the starved thread. Whether a wait that long happens in the
 * window is up to the scheduler, so the verdict does not depend on it.
 */
static void checked_run(struct weft_lab_ctx *ctx, struct st_shared *sh, unsigned greedy_n)
{
    struct st_outcome o;
    setenv("WEFT_CHECK_STARVE_MS", "5", 0);
    weft_lab_check_begin(ctx);
    weft_mutex_init(&sh->mu, "starvation.unfair"); /* a new life the checker knows */
    uint64_t full = sh->budget_ns;
    sh->budget_ns = full / 5 > 300000000u ? full / 5 : 300000000u;
    if (run_lock(sh, false, greedy_n, &o) != 0)
        weft_lab_note(ctx, "The checked run could not start its threads.");
    sh->budget_ns = full;
    unsigned n = weft_lab_check_collect(ctx);
    if (n > 0)
        weft_lab_note(ctx,
                      "With the check layer on (starvation threshold %s ms) it reported %u "
                      "starved thread%s, shown above (under an unfair lock the greedy "
                      "threads can starve one another too).",
                      getenv("WEFT_CHECK_STARVE_MS"), n, n == 1 ? "" : "s");
    else
        weft_lab_note(ctx,
                      "With the check layer on (starvation threshold %s ms), no wait "
                      "passed the threshold in its short run, so nothing was reported.",
                      getenv("WEFT_CHECK_STARVE_MS"));
}

static int st_run(struct weft_lab_ctx *ctx)
{
    static struct st_shared sh;
    weft_mutex_init(&sh.mu, "starvation.unfair");
    weft_fairlock_init(&sh.fl, "starvation.fair");
    /* Twice the CPUs (4 to 8): more greedy threads than CPUs keep the lock
     * busy even while some of them are preempted. */
    unsigned greedy_n = 2 * ctx->cpus;
    greedy_n = greedy_n < 4 ? 4 : greedy_n > MAX_GREEDY ? MAX_GREEDY : greedy_n;
    sh.budget_ns = weft_lab_budget_ns(ctx, 1500);
    sh.cap_ns = (int64_t)weft_lab_budget_ns(ctx, 500);
    struct st_outcome unfair, fair;
    int rc = run_lock(&sh, false, greedy_n, &unfair);
    if (rc == 0)
        rc = run_lock(&sh, true, greedy_n, &fair);
    if (rc != 0)
        return weft_lab_fail(ctx, rc, "lock threads");
    static const char *const cols[] = {"max wait ms", "mean wait us", "occasional n",
                                       "greedy min %", "greedy max %"};
    weft_lab_table(ctx, "the occasional thread's wait, and each greedy thread's share", 5, cols);
    record(ctx, "unfair", &unfair);
    record(ctx, "fair", &fair);
    weft_lab_plot(ctx, WEFT_LAB_PLOT_BARS, 3u, true, "lock", "wait (ms / us)");
    weft_lab_metric(ctx, "greedy_threads", greedy_n);
    weft_lab_metric(ctx, "wait_cap_ms", (double)sh.cap_ns / 1e6);
    double ratio = fair.mean_wait_us > 0 ? unfair.mean_wait_us / fair.mean_wait_us : 0;
    weft_lab_metric(ctx, "mean_wait_ratio", ratio);
    weft_lab_verdict(ctx, ratio >= 5 && unfair.max_wait_ms > fair.max_wait_ms);
    weft_lab_note(ctx,
                  "%u greedy threads: the occasional thread waited %.0f us on average and "
                  "up to %.2f ms for the unfair mutex (%.0f timeouts at %.0f ms); %.0f us "
                  "and up to %.2f ms for the fair lock. Mean wait ratio %.1fx (threshold "
                  "5x, with a longer worst case too).",
                  greedy_n, unfair.mean_wait_us, unfair.max_wait_ms, unfair.timeouts,
                  (double)sh.cap_ns / 1e6, fair.mean_wait_us, fair.max_wait_ms, ratio);
    weft_lab_note_load(ctx);
    weft_lab_note(ctx, "The fair lock hands over in arrival order, so the wait is bounded by "
                       "the queue ahead; the cost is a wake-up on every hand-over, visible as "
                       "fewer acquisitions in total.");
    checked_run(ctx, &sh, greedy_n);
    return 0;
}

const struct weft_lab_experiment weft_lab_starvation = {
    "starvation",
    "With an unfair lock, greedy threads that re-take it at once can make an occasional "
    "thread wait far longer than with a fair (FIFO) lock.",
    st_run,
};
