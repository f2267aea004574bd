/*
 * memory_order.c - the `memory-order` experiment: the store-buffering litmus
 * test.
 *
 *     thread 0             thread 1
 *     [W] x = 1            [W] y = 1
 *     [R] r0 = y           [R] r1 = x
 *
 * Under sequential consistency at least one load sees the other thread's
 * store, so r0 == r1 == 0 is impossible. With relaxed stores and loads, x86
 * (and every other real CPU) may let each load run while the thread's own
 * store still sits in its store buffer, and both loads return the old
 * values. A seq_cst fence between the store and the load (MFENCE on x86)
 * drains the store buffer first and forbids that outcome.
 *
 * Each trial uses fresh values instead of fresh variables: in trial i both
 * threads store i + 1, and a load "sees the old value" when it returns less
 * than i + 1. A spin gate starts both threads of each trial together, which
 * is what makes the race window line up.
 *
 * Each variant runs up to a million trials (scaled by the mode) or until its
 * time budget is spent, whichever comes first; the rates are per trial run.
 *
 * Verdict: reproduced when the both-old outcome occurred at least once
 * without a fence and never with the seq_cst fence.
 */
#include <stdio.h>
#include <stdlib.h>

#include "weft.h"
#include "lab/lab.h"

/*
 * gcc's ThreadSanitizer does not support atomic_thread_fence. In that build
 * the fenced variant uses seq_cst stores and loads instead, which forbid
 * the outcome by the same rule (all seq_cst operations form one total
 * order) and compile to the same XCHG/MFENCE on x86.
 */
#if defined(__SANITIZE_THREAD__)
#define SB_FENCE_IS_OPS 1
#define SB_FENCED_LABEL "seq_cst store+load"
#else
#define SB_FENCE_IS_OPS 0
#define SB_FENCED_LABEL "seq_cst fence"
#endif

struct sb_shared {
    uint64_t x __attribute__((aligned(64))); /* atomic */
    uint64_t y __attribute__((aligned(64))); /* atomic */
    struct weft_lab_gate gate __attribute__((aligned(64)));
    uint64_t trials;   /* the most trials to run */
    uint64_t done;     /* trials actually run (thread 0) */
    uint64_t deadline; /* monotonic ns: stop early past this */
    unsigned stop;     /* atomic: set by thread 0 before a gate, read after it */
    bool fence;
    uint8_t *old[2]; /* old[t][i]: thread t saw the old value in trial i */
};

struct sb_worker {
    struct sb_shared *sh;
    unsigned id;
};

static inline void sb_fence(void)
{
#if !SB_FENCE_IS_OPS
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

static void *sb_thread(void *arg)
{
    struct sb_worker *w = arg;
    struct sb_shared *sh = w->sh;
    uint64_t *mine = w->id == 0 ? &sh->x : &sh->y;
    uint64_t *theirs = w->id == 0 ? &sh->y : &sh->x;
    uint8_t *old = sh->old[w->id];
    uint64_t i;
    for (i = 0; i < sh->trials; i++) {
        bool check = i % 1024 == 0;
        if (check && w->id == 0 && weft_now_ns() > sh->deadline)
            __atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
        weft_lab_gate_wait(&sh->gate);
        /* Relaxed: the gate orders thread 0's store before both loads, so both
         * threads stop at the same trial. Only every 1024th trial writes or
         * reads the flag: thread 0 cannot reach the next such gate before
         * thread 1 has read this one, so they never disagree. */
        if (check && __atomic_load_n(&sh->stop, __ATOMIC_RELAXED))
            break;
        if (sh->fence && SB_FENCE_IS_OPS) {
            __atomic_store_n(mine, i + 1, __ATOMIC_SEQ_CST);
            old[i] = __atomic_load_n(theirs, __ATOMIC_SEQ_CST) < i + 1;
            continue;
        }
        /* Relaxed on purpose: this is the reordering under test. */
        __atomic_store_n(mine, i + 1, __ATOMIC_RELAXED);
        if (sh->fence)
            /* [W] mine, seq_cst fence, [R] theirs: pairs with the same fence in
             * the other thread, so at least one of the loads sees a store. */
            sb_fence();
        old[i] = __atomic_load_n(theirs, __ATOMIC_RELAXED) < i + 1;
    }
    if (w->id == 0)
        sh->done = i;
    return NULL;
}

/* Trials in which both loads saw the old value, out of *ran. */
static int run_variant(struct sb_shared *sh, bool fence, uint64_t budget, uint64_t *both,
                       uint64_t *ran)
{
    struct sb_worker w[2] = {{sh, 0}, {sh, 1}};
    sh->fence = fence;
    sh->x = sh->y = 0;
    sh->stop = 0;
    sh->deadline = weft_now_ns() + budget;
    weft_lab_gate_init(&sh->gate, 2);
    int rc = weft_lab_run_threads(2, sb_thread, w, sizeof w[0], 60000000000LL);
    if (rc != 0)
        return rc;
    *both = 0;
    *ran = sh->done;
    for (uint64_t i = 0; i < sh->done; i++)
        *both += sh->old[0][i] && sh->old[1][i];
    return 0;
}

static void explain(struct weft_lab_ctx *ctx, double relaxed_pm, uint64_t fenced)
{
    weft_lab_note(ctx,
                  "Without a fence both threads read the old value in %.1f of every "
                  "million trials; with a seq_cst fence in %llu.",
                  relaxed_pm, (unsigned long long)fenced);
    if (relaxed_pm == 0)
        weft_lab_note(ctx,
                      "The reordering did not show this time (it needs both threads "
                      "running at the same instant on different CPUs%s).",
                      ctx->cpus < 2 ? ", and this machine has one" : "");
    weft_lab_note(ctx, "The same reordering breaks publishing an object without release and "
                       "acquire: in double-checked locking a reader can see the pointer "
                       "before the fields it points to, and use a half-built object. "
                       "weft_once is safe because the initialiser's writes are published by "
                       "a release store of the done state and every caller that sees done "
                       "reads it with an acquire load (or waits on the futex).");
}

static int sb_run(struct weft_lab_ctx *ctx)
{
    struct sb_shared *sh = aligned_alloc(64, sizeof *sh);
    if (sh == NULL)
        return weft_lab_fail(ctx, -ENOMEM, "state");
    sh->trials = weft_lab_scale(ctx, 1000000);
    sh->old[0] = calloc(sh->trials, 1);
    sh->old[1] = calloc(sh->trials, 1);
    uint64_t relaxed = 0, fenced = 0, n_relaxed = 0, n_fenced = 0;
    uint64_t budget = weft_lab_budget_ns(ctx, 2000);
    int rc = sh->old[0] && sh->old[1] ? 0 : -ENOMEM;
    if (rc == 0)
        rc = run_variant(sh, false, budget, &relaxed, &n_relaxed);
    if (rc == 0)
        rc = run_variant(sh, true, budget, &fenced, &n_fenced);
    free(sh->old[0]);
    free(sh->old[1]);
    free(sh);
    if (rc != 0)
        return weft_lab_fail(ctx, rc, "litmus threads");
    if (n_relaxed == 0 || n_fenced == 0)
        return weft_lab_fail(ctx, -ETIMEDOUT, "no trial completed within the time budget");
    double pm_r = 1e6 / (double)n_relaxed, pm_f = 1e6 / (double)n_fenced;
    static const char *const cols[] = {"trials", "both old", "per million"};
    weft_lab_table(ctx, "store buffering: r0 == r1 == 0", 3, cols);
    weft_lab_row(ctx, "relaxed, no fence", (double)n_relaxed, (double)relaxed, relaxed * pm_r);
    weft_lab_row(ctx, SB_FENCED_LABEL, (double)n_fenced, (double)fenced, fenced * pm_f);
    weft_lab_plot(ctx, WEFT_LAB_PLOT_BARS, 1u << 2, false, "variant", "per million trials");
    weft_lab_metric(ctx, "trials", (double)(n_relaxed + n_fenced));
    weft_lab_metric(ctx, "trials_relaxed", (double)n_relaxed);
    weft_lab_metric(ctx, "trials_fenced", (double)n_fenced);
    weft_lab_metric(ctx, "both_old_relaxed", (double)relaxed);
    weft_lab_metric(ctx, "both_old_fenced", (double)fenced);
    weft_lab_metric(ctx, "both_old_relaxed_per_million", relaxed * pm_r);
    weft_lab_metric(ctx, "both_old_fenced_per_million", fenced * pm_f);
    weft_lab_verdict(ctx, relaxed > 0 && fenced == 0);
    explain(ctx, relaxed * pm_r, fenced);
    weft_lab_note_load(ctx);
    return 0;
}

const struct weft_lab_experiment weft_lab_memory_order = {
    "memory-order",
    "In the store-buffering test both threads can read the old values when stores and loads "
    "are relaxed (a CPU lets a load pass an earlier store); a seq_cst fence forbids it.",
    sb_run,
};
