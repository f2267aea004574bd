/*
 * livelock.c - the `livelock` experiment: two polite threads, each needing
 * both of two locks, take their own lock, try the other's, and on failure
 * politely release theirs and retry at once. In lock-step each finds the
 * other's lock taken every time: both stay busy, neither gets anywhere.
 * Randomised exponential back-off (weft_backoff_*) after a failure breaks
 * the symmetry, and they make progress.
 *
 * Each thread holds its own lock for a short fixed time (the work of
 * getting ready) before trying the other's, so a try succeeds only if it
 * falls into the other thread's brief release-and-retake gap.
 *
 * Verdict: reproduced when the polite threads succeed in fewer than 5% of
 * their attempts and the backing-off threads complete at least ten times as
 * many successes per second (or any, if the polite ones had none).
 */
#include <stdio.h>

#include "internal/base.h"
#include "weft.h"
#include "lab/lab.h"

#define HOLD_NS 5000u /* own lock held before trying the other's */

struct ll_shared {
    weft_mutex_t lock[2];
    bool backoff;
    uint64_t budget_ns;
    struct weft_lab_gate gate;
};

struct ll_worker {
    struct ll_shared *sh;
    unsigned id;
    uint64_t seed;
    uint64_t attempts, successes, start, end;
} __attribute__((aligned(64)));

static void hold(uint64_t ns)
{
    for (uint64_t t0 = weft_now_ns(); weft_now_ns() - t0 < ns;)
        weft__cpu_relax();
}

/* One attempt: own lock, get ready, try the other's. */
static bool attempt(struct ll_worker *w) WEFT_NO_THREAD_SAFETY_ANALYSIS
{
    weft_mutex_t *mine = &w->sh->lock[w->id], *theirs = &w->sh->lock[1 - w->id];
    weft_mutex_lock(mine);
    hold(HOLD_NS);
    bool ok = weft_mutex_trylock(theirs) == 0;
    if (ok)
        weft_mutex_unlock(theirs);
    weft_mutex_unlock(mine);
    return ok;
}

static void *ll_thread(void *arg)
{
    struct ll_worker *w = arg;
    weft_backoff_t b;
    weft_backoff_init(&b, w->seed);
    weft_lab_gate_wait(&w->sh->gate);
    w->start = weft_now_ns();
    uint64_t deadline = w->start + w->sh->budget_ns;
    do {
        w->attempts++;
        if (attempt(w)) {
            w->successes++;
            weft_backoff_reset(&b);
        } else if (w->sh->backoff)
            weft_backoff_pause(&b);
        w->end = weft_now_ns();
    } while (w->end < deadline);
    return NULL;
}

struct ll_rate {
    double attempts, successes; /* per second, both threads together */
};

static int run_mode(struct ll_shared *sh, bool backoff, uint64_t seed, struct ll_rate *r)
{
    struct ll_worker w[2] = {{.sh = sh, .id = 0, .seed = weft_lab_mix(seed)},
                             {.sh = sh, .id = 1, .seed = weft_lab_mix(seed + 1)}};
    sh->backoff = backoff;
    weft_lab_gate_init(&sh->gate, 2);
    int rc = weft_lab_run_threads(2, ll_thread, w, sizeof w[0], 30000000000LL);
    if (rc != 0)
        return rc;
    uint64_t start = w[0].start < w[1].start ? w[0].start : w[1].start;
    uint64_t end = w[0].end > w[1].end ? w[0].end : w[1].end;
    double secs = (double)(end - start) / 1e9;
    r->attempts = (double)(w[0].attempts + w[1].attempts) / secs;
    r->successes = (double)(w[0].successes + w[1].successes) / secs;
    return 0;
}

static int ll_run(struct weft_lab_ctx *ctx)
{
    static struct ll_shared sh;
    weft_mutex_init(&sh.lock[0], "livelock.left");
    weft_mutex_init(&sh.lock[1], "livelock.right");
    sh.budget_ns = weft_lab_budget_ns(ctx, 1500);
    struct ll_rate polite, backoff;
    int rc = run_mode(&sh, false, ctx->seed, &polite);
    if (rc == 0)
        rc = run_mode(&sh, true, ctx->seed + 2, &backoff);
    if (rc != 0)
        return weft_lab_fail(ctx, rc, "the two threads");
    double pr = polite.successes / polite.attempts, br = backoff.successes / backoff.attempts;
    static const char *const cols[] = {"attempts/s", "successes/s", "success %"};
    weft_lab_table(ctx, "two threads, each needing both locks", 3, cols);
    weft_lab_row(ctx, "polite, retry at once", polite.attempts, polite.successes, 100 * pr);
    weft_lab_row(ctx, "random back-off", backoff.attempts, backoff.successes, 100 * br);
    weft_lab_plot(ctx, WEFT_LAB_PLOT_BARS, 3u, true, "strategy", "per second");
    weft_lab_metric(ctx, "polite_attempts_per_sec", polite.attempts);
    weft_lab_metric(ctx, "polite_successes_per_sec", polite.successes);
    weft_lab_metric(ctx, "backoff_attempts_per_sec", backoff.attempts);
    weft_lab_metric(ctx, "backoff_successes_per_sec", backoff.successes);
    weft_lab_metric(ctx, "polite_success_ratio", pr);
    weft_lab_metric(ctx, "backoff_success_ratio", br);
    bool stuck = pr < 0.05;
    bool freed = backoff.successes > 0 && backoff.successes >= 10 * polite.successes;
    weft_lab_verdict(ctx, stuck && freed);
    weft_lab_note(ctx,
                  "Polite threads succeeded in %.2f%% of %.0f attempts per second: busy "
                  "but (almost) stuck. With random back-off: %.1f%% of %.0f, %.0f "
                  "successes per second (%.0fx).",
                  100 * pr, polite.attempts, 100 * br, backoff.attempts, backoff.successes,
                  polite.successes > 0 ? backoff.successes / polite.successes : 0.0);
    weft_lab_note_load(ctx);
    if (ctx->cpus < 2)
        weft_lab_note(ctx, "On one CPU the threads cannot run in lock-step; the scheduler's "
                           "time slices decide who wins.");
    return 0;
}

const struct weft_lab_experiment weft_lab_livelock = {
    "livelock",
    "Two polite threads that give way to each other and retry in lock-step make (almost) no "
    "progress; with randomised back-off they do.",
    ll_run,
};
