/*
 * pool_starvation.c - the `pool-starvation` experiment: tasks that wait on
 * subtasks queued in their own bounded pool can occupy every worker and
 * wait forever; weft detects the pool-induced deadlock and the wait that
 * closes it returns -EDEADLK (with a report) instead of hanging. Separate
 * pools for parents and children (bulkheads) complete, and so does the same
 * pool in inline mode (a waiting worker runs the queued subtask itself).
 *
 * Each run submits as many parent tasks as the pool has workers; the
 * parents meet at a gate (so every worker is busy with a parent before any
 * child exists, and no idle worker can steal a child early), then each
 * submits one child to the children's pool and waits for it. The main
 * thread waits on every parent with a timeout, and the pools are destroyed
 * with a timeout, so nothing can hang even if detection failed.
 *
 * Verdict: reproduced when in the shared pool at least one wait returned
 * -EDEADLK, a deadlock report was made, no wait timed out and every parent
 * finished, while the bulkhead and inline runs finished every parent and
 * child with no -EDEADLK.
 */
#include <stdio.h>

#include "weft.h"
#include "lab/lab.h"

#define WORKERS 2u
#define ROUNDS_MAX 64u

enum mode { M_SHARED, M_BULKHEAD, M_INLINE, M_COUNT };
static const char *const mode_name[M_COUNT] = {"shared_pool", "bulkhead", "inline"};

struct ps_run {
    weft_pool_t *parents, *children;
    struct weft_lab_gate gate; /* every parent is running before any child exists */
    unsigned edeadlk;          /* atomic: parent waits that returned -EDEADLK */
    unsigned finished;         /* atomic: children that ran */
    unsigned timeouts;         /* atomic: parent waits that timed out */
};

static void *child_task(void *arg)
{
    struct ps_run *r = arg;
    /* Relaxed: counts, read after the pools are destroyed (joined). */
    __atomic_fetch_add(&r->finished, 1, __ATOMIC_RELAXED);
    return NULL;
}

/* A parent: queue one child in the children's pool and wait for it. */
static void *parent_task(void *arg)
{
    struct ps_run *r = arg;
    weft_future_t *f = NULL;
    weft_lab_gate_wait(&r->gate);
    if (WEFT_POOL_SUBMIT(r->children, child_task, r, &f) != 0)
        return (void *)(uintptr_t)1;
    int rc = weft_future_wait(f, 5000000000LL, NULL);
    if (rc == -EDEADLK)
        __atomic_fetch_add(&r->edeadlk, 1, __ATOMIC_RELAXED);
    else if (rc == -ETIMEDOUT)
        __atomic_fetch_add(&r->timeouts, 1, __ATOMIC_RELAXED);
    weft_future_release(f);
    return NULL;
}

static int make_pools(struct ps_run *r, enum mode m)
{
    weft_pool_opts_t o = {
        .name = "lab.parents", .threads = WORKERS, .wait_runs_inline = m == M_INLINE};
    int rc = weft_pool_create(&r->parents, &o);
    if (rc != 0 || m != M_BULKHEAD) {
        r->children = r->parents;
        return rc;
    }
    o.name = "lab.children";
    rc = weft_pool_create(&r->children, &o);
    if (rc != 0)
        weft_pool_destroy(r->parents);
    return rc;
}

/* Submit the parents, wait for each with a timeout, destroy the pools. */
static int run_round(struct ps_run *r, unsigned *parents_done)
{
    weft_future_t *f[WORKERS];
    unsigned n = 0;
    int rc = 0;
    for (; n < WORKERS && rc == 0; n++)
        rc = WEFT_POOL_SUBMIT(r->parents, parent_task, r, &f[n]);
    n -= rc != 0;
    for (unsigned i = 0; i < n; i++) {
        *parents_done += weft_future_wait(f[i], 10000000000LL, NULL) == 0;
        weft_future_release(f[i]);
    }
    if (r->children != r->parents)
        (void)weft_pool_destroy_timed(r->children, 10000000000LL);
    (void)weft_pool_destroy_timed(r->parents, 10000000000LL);
    return rc;
}

struct ps_outcome {
    unsigned parents, parents_done, children_done, edeadlk, timeouts;
    double ms;
};

static int run_mode(enum mode m, unsigned rounds, struct ps_outcome *o)
{
    uint64_t t0 = weft_now_ns();
    for (unsigned k = 0; k < rounds; k++) {
        struct ps_run r = {0};
        weft_lab_gate_init(&r.gate, WORKERS);
        int rc = make_pools(&r, m);
        if (rc != 0)
            return rc;
        rc = run_round(&r, &o->parents_done);
        if (rc != 0)
            return rc;
        o->parents += WORKERS;
        o->children_done += r.finished;
        o->edeadlk += r.edeadlk;
        o->timeouts += r.timeouts;
    }
    o->ms = (double)(weft_now_ns() - t0) / 1e6;
    return 0;
}

static void record(struct weft_lab_ctx *ctx, enum mode m, const struct ps_outcome *o)
{
    char key[64];
    snprintf(key, sizeof key, "%s_parents_done", mode_name[m]);
    weft_lab_metric(ctx, key, o->parents_done);
    snprintf(key, sizeof key, "%s_children_done", mode_name[m]);
    weft_lab_metric(ctx, key, o->children_done);
    snprintf(key, sizeof key, "%s_edeadlk", mode_name[m]);
    weft_lab_metric(ctx, key, o->edeadlk);
    snprintf(key, sizeof key, "%s_timeouts", mode_name[m]);
    weft_lab_metric(ctx, key, o->timeouts);
    snprintf(key, sizeof key, "%s_ms", mode_name[m]);
    weft_lab_metric(ctx, key, o->ms);
    weft_lab_row(ctx, mode_name[m], (double)o->parents_done, (double)o->children_done,
                 (double)o->edeadlk, (double)o->timeouts, o->ms);
}

static int ps_run(struct weft_lab_ctx *ctx)
{
    unsigned rounds = (unsigned)weft_lab_scale(ctx, 50);
    rounds = rounds > ROUNDS_MAX ? ROUNDS_MAX : rounds;
    static const char *const cols[] = {"parents done", "children done", "EDEADLK", "timeouts",
                                       "ms"};
    weft_lab_table(ctx, "tasks waiting on subtasks in a 2-worker pool", 5, cols);
    weft_lab_check_begin(ctx); /* the pool's deadlock report goes through it */
    struct ps_outcome o[M_COUNT] = {{0}};
    for (int m = 0; m < M_COUNT; m++) {
        int rc = run_mode((enum mode)m, rounds, &o[m]);
        if (rc != 0)
            return weft_lab_fail(ctx, rc, "pools for %s", mode_name[m]);
        record(ctx, (enum mode)m, &o[m]);
    }
    unsigned reports = weft_lab_check_collect(ctx);
    weft_lab_metric(ctx, "workers", WORKERS);
    weft_lab_metric(ctx, "rounds", rounds);
    weft_lab_plot(ctx, WEFT_LAB_PLOT_BARS, 1u << 2, false, "mode", "waits that returned EDEADLK");
    const struct ps_outcome *s = &o[M_SHARED], *b = &o[M_BULKHEAD], *i = &o[M_INLINE];
    bool detected = s->edeadlk >= 1 && s->parents_done == s->parents && s->timeouts == 0;
    bool fixed = b->edeadlk == 0 && b->children_done == b->parents &&
                 b->parents_done == b->parents && i->edeadlk == 0 &&
                 i->children_done == i->parents && i->parents_done == i->parents;
    weft_lab_verdict(ctx, detected && reports >= 1 && fixed);
    weft_lab_note(ctx,
                  "Shared pool: in %u rounds, %u waits returned EDEADLK instead of hanging "
                  "(the pool then ran the queued children); %u of %u parents finished.",
                  rounds, s->edeadlk, s->parents_done, s->parents);
    weft_lab_note(ctx,
                  "Bulkhead (children in their own pool): %u of %u children ran, %u "
                  "EDEADLK. Inline (a waiting worker runs the queued child): %u of %u, %u "
                  "EDEADLK.",
                  b->children_done, b->parents, b->edeadlk, i->children_done, i->parents,
                  i->edeadlk);
    return 0;
}

const struct weft_lab_experiment weft_lab_pool_starvation = {
    "pool-starvation",
    "Tasks that wait on subtasks queued in their own bounded pool deadlock it; weft's wait "
    "returns EDEADLK with a report instead of hanging, and separate pools (bulkheads) or "
    "inline waiting complete.",
    ps_run,
};
