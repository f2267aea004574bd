/*
 * cas_vs_lock.c - the `cas-vs-lock` experiment: one shared counter under a
 * weft mutex, with a CAS loop, and with an atomic add, from 1 to 32 threads.
 *
 * Each point runs for a fixed time; every thread counts its own increments
 * and, for the CAS loop, its failed attempts. The counter must equal the sum
 * of the threads' counts (no variant may lose an update).
 *
 * Verdict: reproduced when, with one thread, the atomic add and the CAS loop
 * are both cheaper per increment than the mutex, and, at the thread count
 * where contention peaks (the most CAS retries, 2 threads or more), CAS needs
 * more than 0.05 retries per success (contention makes it redo work, which
 * an atomic add never does). With many more threads than CPUs the retries
 * can fall again: most threads wait for a CPU rather than race for the line.
 */
#include <stdio.h>

#include "weft.h"
#include "lab/lab.h"

enum variant { V_MUTEX, V_CAS, V_ATOMIC, V_COUNT };
static const char *const variant_name[V_COUNT] = {"mutex", "cas", "atomic"};

#define MAX_THREADS 32

struct cvl_shared {
    enum variant v;
    uint64_t budget_ns;
    uint64_t counter __attribute__((aligned(64))); /* atomic, or guarded by mu */
    weft_mutex_t mu;
    struct weft_lab_gate gate;
};

struct cvl_worker {
    struct cvl_shared *sh;
    uint64_t ops, retries, start, end;
} __attribute__((aligned(64)));

static void one_op(struct cvl_worker *w, struct cvl_shared *sh)
{
    if (sh->v == V_MUTEX) {
        weft_mutex_lock(&sh->mu);
        sh->counter++;
        weft_mutex_unlock(&sh->mu);
    } else if (sh->v == V_ATOMIC) {
        __atomic_fetch_add(&sh->counter, 1, __ATOMIC_RELAXED);
    } else {
        uint64_t v = __atomic_load_n(&sh->counter, __ATOMIC_RELAXED);
        /* Relaxed: a bare counter publishes nothing; the CAS is still atomic. */
        while (!__atomic_compare_exchange_n(&sh->counter, &v, v + 1, true, __ATOMIC_RELAXED,
                                            __ATOMIC_RELAXED))
            w->retries++;
    }
}

static void *cvl_thread(void *arg)
{
    struct cvl_worker *w = arg;
    struct cvl_shared *sh = w->sh;
    weft_lab_gate_wait(&sh->gate);
    w->start = weft_now_ns();
    uint64_t deadline = w->start + sh->budget_ns, now;
    do {
        for (int i = 0; i < 256; i++)
            one_op(w, sh);
        w->ops += 256;
        now = weft_now_ns();
    } while (now < deadline);
    w->end = now;
    return NULL;
}

struct cvl_point {
    double ns_per_op, retries_per_success, lost;
};

static int run_point(struct cvl_shared *sh, enum variant v, unsigned n, struct cvl_point *p)
{
    static struct cvl_worker w[MAX_THREADS];
    sh->v = v;
    sh->counter = 0;
    weft_lab_gate_init(&sh->gate, n);
    for (unsigned i = 0; i < n; i++)
        w[i] = (struct cvl_worker){.sh = sh};
    int rc = weft_lab_run_threads(n, cvl_thread, w, sizeof w[0], 30000000000LL);
    if (rc != 0)
        return rc;
    uint64_t ops = 0, retries = 0, start = UINT64_MAX, end = 0;
    for (unsigned i = 0; i < n; i++) {
        ops += w[i].ops;
        retries += w[i].retries;
        start = w[i].start < start ? w[i].start : start;
        end = w[i].end > end ? w[i].end : end;
    }
    p->ns_per_op = (double)(end - start) / (double)ops;
    p->retries_per_success = (double)retries / (double)ops;
    p->lost = (double)(ops - sh->counter);
    return 0;
}

static void record_point(struct weft_lab_ctx *ctx, unsigned n, const struct cvl_point p[])
{
    char key[64];
    for (int v = 0; v < V_COUNT; v++) {
        snprintf(key, sizeof key, "ns_per_op_%s_%ut", variant_name[v], n);
        weft_lab_metric(ctx, key, p[v].ns_per_op);
    }
    snprintf(key, sizeof key, "cas_retries_per_success_%ut", n);
    weft_lab_metric(ctx, key, p[V_CAS].retries_per_success);
    char label[16];
    snprintf(label, sizeof label, "%u", n);
    weft_lab_row(ctx, label, p[V_MUTEX].ns_per_op, p[V_CAS].ns_per_op, p[V_ATOMIC].ns_per_op,
                 p[V_CAS].retries_per_success);
}

/* What the sweep over thread counts found. */
struct cvl_sweep {
    struct cvl_point first[V_COUNT]; /* one thread */
    struct cvl_point last[V_COUNT];  /* the most threads */
    double lost[V_COUNT];            /* summed over all points */
    double peak;                     /* highest CAS retries per success, 2+ threads */
    unsigned peak_n, maxn;
};

static int sweep(struct weft_lab_ctx *ctx, struct cvl_shared *sh, struct cvl_sweep *s)
{
    struct cvl_point *p = s->last;
    for (unsigned n = 1; n <= s->maxn; n *= 2) {
        for (int v = 0; v < V_COUNT; v++) {
            int rc = run_point(sh, (enum variant)v, n, &p[v]);
            if (rc != 0)
                return weft_lab_fail(ctx, rc, "%s with %u threads", variant_name[v], n);
            s->lost[v] += p[v].lost;
            if (n == 1)
                s->first[v] = p[v];
        }
        if (n > 1 && p[V_CAS].retries_per_success > s->peak) {
            s->peak = p[V_CAS].retries_per_success;
            s->peak_n = n;
        }
        record_point(ctx, n, p);
    }
    return 0;
}

static void judge(struct weft_lab_ctx *ctx, const struct cvl_sweep *s)
{
    const struct cvl_point *f = s->first;
    bool cheap =
        f[V_ATOMIC].ns_per_op < f[V_MUTEX].ns_per_op && f[V_CAS].ns_per_op < f[V_MUTEX].ns_per_op;
    bool exact = s->lost[V_MUTEX] == 0 && s->lost[V_CAS] == 0 && s->lost[V_ATOMIC] == 0;
    weft_lab_verdict(ctx, cheap && s->peak > 0.05 && exact);
    weft_lab_note(ctx,
                  "One thread: mutex %.1f ns, CAS %.1f ns, atomic add %.1f ns per "
                  "increment.",
                  f[V_MUTEX].ns_per_op, f[V_CAS].ns_per_op, f[V_ATOMIC].ns_per_op);
    if (s->peak > 0)
        weft_lab_note(ctx,
                      "Contention peaked at %u threads: CAS retried %.2f times per success "
                      "(threshold 0.05); at %u threads %.2f.",
                      s->peak_n, s->peak, s->maxn, s->last[V_CAS].retries_per_success);
    else
        weft_lab_note(ctx, "No CAS ever retried: the threads never raced for the counter at "
                           "the same instant.");
    weft_lab_note(ctx,
                  "Only %u CPU%s run at once, so more threads add waiting, not "
                  "parallelism.",
                  ctx->cpus, ctx->cpus == 1 ? "" : "s");
    weft_lab_note_load(ctx);
    if (!exact)
        weft_lab_note(ctx, "A variant lost updates: that is a bug.");
}

static int cvl_run(struct weft_lab_ctx *ctx)
{
    static struct cvl_shared sh;
    weft_mutex_init(&sh.mu, "cas_vs_lock.counter");
    sh.budget_ns = weft_lab_budget_ns(ctx, 200);
    static const char *const cols[] = {"mutex ns/op", "cas ns/op", "atomic ns/op",
                                       "cas retries/op"};
    weft_lab_table(ctx, "shared counter: ns per increment by thread count", 4, cols);
    struct cvl_sweep s = {.peak_n = 1, .maxn = ctx->mode == WEFT_LAB_QUICK ? 4 : MAX_THREADS};
    int rc = sweep(ctx, &sh, &s);
    if (rc != 0)
        return rc;
    for (int v = 0; v < V_COUNT; v++) {
        char key[64];
        snprintf(key, sizeof key, "lost_updates_%s", variant_name[v]);
        weft_lab_metric(ctx, key, s.lost[v]);
    }
    weft_lab_metric(ctx, "max_threads", s.maxn);
    weft_lab_metric(ctx, "cas_retries_per_success_peak", s.peak);
    weft_lab_plot(ctx, WEFT_LAB_PLOT_LINES, 7u, false, "threads", "ns per increment");
    judge(ctx, &s);
    return 0;
}

const struct weft_lab_experiment weft_lab_cas_vs_lock = {
    "cas-vs-lock",
    "Without contention an atomic add and a CAS loop are cheaper than a lock; under "
    "contention the CAS loop retries, while the atomic add never does.",
    cvl_run,
};
