/*
 * race.c - the `race` experiment: a shared counter incremented by several
 * threads loses updates without synchronisation, and loses none with a weft
 * mutex, an atomic add or a compare-and-swap loop.
 *
 * The unsynchronised variant is a load followed by a separate store (both
 * relaxed atomics): exactly the instructions `counter++` compiles to, but
 * without undefined behaviour, so the sanitizers stay quiet and the compiler
 * cannot fold the loop. Two threads that load the same value both store
 * value + 1, and one increment is lost.
 *
 * Every thread increments until a common window of fixed length has passed
 * since the last of them started (so all of them are live for the whole
 * window, even on a busy machine that starts one late), counting its own
 * increments; the counter should end at the sum of those counts, and the
 * difference is the number of lost updates.
 *
 * Verdict: reproduced when the unsynchronised counter lost at least one
 * update and each of the three fixes lost none.
 */
#include <stdio.h>

#include "weft.h"
#include "lab/lab.h"

enum variant { V_UNSYNC, V_MUTEX, V_ATOMIC, V_CAS, V_COUNT };

static const char *const variant_name[V_COUNT] = {"unsynchronized", "mutex", "atomic", "cas"};

struct race_shared {
    enum variant v;
    bool broken; /* weft_lab_broken(): the mutex variant skips its lock */
    uint64_t budget_ns;
    unsigned nthreads;
    unsigned started;                              /* atomic: workers past the gate */
    uint64_t last_start;                           /* atomic: when the last worker started */
    uint64_t counter __attribute__((aligned(64))); /* atomic (or guarded by mu) */
    weft_mutex_t mu;
    struct weft_lab_gate gate;
};

struct race_worker {
    struct race_shared *sh;
    uint64_t done;    /* increments this worker made */
    uint64_t retries; /* CAS failures */
    uint64_t start, end;
} __attribute__((aligned(64)));

static void inc_unsync(uint64_t *c)
{
    /* Relaxed load, then relaxed store: deliberately not one atomic step. */
    uint64_t v = __atomic_load_n(c, __ATOMIC_RELAXED);
    /* A compiler-only barrier keeps the load and the store two instructions,
     * as in any read-compute-write code. Without it clang fuses them into one
     * unlocked `add` to memory, which a preemption cannot split: updates are
     * then lost only when two CPUs collide inside that one instruction. */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    __atomic_store_n(c, v + 1, __ATOMIC_RELAXED);
}

static uint64_t inc_cas(uint64_t *c)
{
    uint64_t retries = 0;
    uint64_t v = __atomic_load_n(c, __ATOMIC_RELAXED);
    /* Relaxed: the counter publishes nothing else; the CAS is still atomic. */
    while (!__atomic_compare_exchange_n(c, &v, v + 1, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        retries++;
    return retries;
}

static void increment(struct race_worker *w, struct race_shared *sh)
{
    switch (sh->v) {
    case V_UNSYNC:
        inc_unsync(&sh->counter);
        break;
    case V_MUTEX:
        if (sh->broken) {
            inc_unsync(&sh->counter); /* the deliberately broken fix */
            break;
        }
        weft_mutex_lock(&sh->mu);
        sh->counter++;
        weft_mutex_unlock(&sh->mu);
        break;
    case V_ATOMIC:
        __atomic_fetch_add(&sh->counter, 1, __ATOMIC_RELAXED);
        break;
    default:
        w->retries += inc_cas(&sh->counter);
    }
}

/* Note that this worker runs; the window opens when the last one does. */
static void mark_started(struct race_shared *sh, uint64_t now)
{
    /* Relaxed: start-up bookkeeping; the counter itself is what races. */
    uint64_t last = __atomic_load_n(&sh->last_start, __ATOMIC_RELAXED);
    while (now > last && !__atomic_compare_exchange_n(&sh->last_start, &last, now, true,
                                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    __atomic_fetch_add(&sh->started, 1, __ATOMIC_RELEASE);
}

/* True once every worker has started and the budget has passed since the
 * last of them did: all of them were live for one whole common window. */
static bool window_over(const struct race_shared *sh, uint64_t now, unsigned n)
{
    /* Acquire: pairs with the release add in mark_started(), so last_start
     * is final once every start is counted. */
    return __atomic_load_n(&sh->started, __ATOMIC_ACQUIRE) == n &&
           now - __atomic_load_n(&sh->last_start, __ATOMIC_RELAXED) >= sh->budget_ns;
}

/* Increment in chunks until the common window closes, counting our own. */
static void *race_thread(void *arg)
{
    struct race_worker *w = arg;
    struct race_shared *sh = w->sh;
    weft_lab_gate_wait(&sh->gate);
    w->start = weft_now_ns();
    mark_started(sh, w->start);
    do {
        for (int i = 0; i < 1024; i++)
            increment(w, sh);
        w->done += 1024;
        w->end = weft_now_ns();
    } while (!window_over(sh, w->end, sh->nthreads));
    return NULL;
}

struct race_outcome {
    double total, lost, ns_per_op, retries;
};

static int run_variant(enum variant v, unsigned nthreads, uint64_t budget_ns,
                       struct race_outcome *out)
{
    static struct race_shared sh;
    struct race_worker w[8];
    sh.v = v;
    sh.broken = weft_lab_broken();
    sh.budget_ns = budget_ns;
    sh.nthreads = nthreads;
    sh.started = 0;
    sh.last_start = 0;
    sh.counter = 0;
    weft_mutex_init(&sh.mu, "race.counter");
    weft_lab_gate_init(&sh.gate, nthreads);
    for (unsigned i = 0; i < nthreads; i++)
        w[i] = (struct race_worker){.sh = &sh};
    int rc = weft_lab_run_threads(nthreads, race_thread, w, sizeof w[0], 60000000000LL);
    if (rc != 0)
        return rc;
    uint64_t total = 0, retries = 0, start = UINT64_MAX, end = 0;
    for (unsigned i = 0; i < nthreads; i++) {
        total += w[i].done;
        retries += w[i].retries;
        start = w[i].start < start ? w[i].start : start;
        end = w[i].end > end ? w[i].end : end;
    }
    out->total = (double)total;
    out->lost = (double)(total - sh.counter);
    out->ns_per_op = (double)(end - start) / (double)total;
    out->retries = (double)retries;
    return 0;
}

static void explain(struct weft_lab_ctx *ctx, unsigned nthreads, const struct race_outcome o[])
{
    weft_lab_note(ctx, "%u threads added 1 to one counter for %.0f ms per variant.", nthreads,
                  weft_lab_get(ctx, "ms_per_variant", 0));
    if (o[V_UNSYNC].lost > 0)
        weft_lab_note(ctx,
                      "Without synchronisation %.0f of %.0f increments (%.2f%%) vanished: "
                      "two threads read the same value and both wrote value + 1.",
                      o[V_UNSYNC].lost, o[V_UNSYNC].total,
                      100.0 * o[V_UNSYNC].lost / o[V_UNSYNC].total);
    else
        weft_lab_note(ctx,
                      "No update was lost this time: the threads rarely overlapped "
                      "(%u CPU%s), which shows a race can hide, not that it is absent.",
                      ctx->cpus, ctx->cpus == 1 ? "" : "s");
    if (o[V_MUTEX].lost != 0 || o[V_ATOMIC].lost != 0 || o[V_CAS].lost != 0)
        weft_lab_note(ctx, "A synchronised variant lost updates: %s.",
                      weft_lab_broken() ? "WEFT_LAB_BROKEN asked for a broken mutex variant"
                                        : "that is a bug in weft");
    weft_lab_note(ctx,
                  "The atomic add is one locked instruction; the CAS loop retried %.3f "
                  "times per increment; the mutex costs an acquire and a release.",
                  o[V_CAS].retries / o[V_CAS].total);
    weft_lab_note_load(ctx);
}

static int race_run(struct weft_lab_ctx *ctx)
{
    unsigned nthreads = ctx->cpus < 2 ? 2 : ctx->cpus > 8 ? 8 : ctx->cpus;
    uint64_t budget = weft_lab_budget_ns(ctx, 400);
    struct race_outcome o[V_COUNT];
    static const char *const cols[] = {"increments", "lost", "lost %", "ns/op"};
    weft_lab_table(ctx, "shared counter, increments lost", 4, cols);
    for (int v = 0; v < V_COUNT; v++) {
        int rc = run_variant((enum variant)v, nthreads, budget, &o[v]);
        if (rc != 0)
            return weft_lab_fail(ctx, rc, "threads for variant %s", variant_name[v]);
        char key[64];
        snprintf(key, sizeof key, "lost_updates_%s", variant_name[v]);
        weft_lab_metric(ctx, key, o[v].lost);
        snprintf(key, sizeof key, "ns_per_op_%s", variant_name[v]);
        weft_lab_metric(ctx, key, o[v].ns_per_op);
        weft_lab_row(ctx, variant_name[v], o[v].total, o[v].lost, 100.0 * o[v].lost / o[v].total,
                     o[v].ns_per_op);
    }
    weft_lab_metric(ctx, "threads", nthreads);
    weft_lab_metric(ctx, "ms_per_variant", (double)budget / 1e6);
    weft_lab_metric(ctx, "cas_retries_per_success", o[V_CAS].retries / o[V_CAS].total);
    weft_lab_plot(ctx, WEFT_LAB_PLOT_BARS, 1u << 2, false, "variant", "% of increments lost");
    bool fixes_ok = o[V_MUTEX].lost == 0 && o[V_ATOMIC].lost == 0 && o[V_CAS].lost == 0;
    weft_lab_verdict(ctx, o[V_UNSYNC].lost > 0 && fixes_ok);
    explain(ctx, nthreads, o);
    return 0;
}

const struct weft_lab_experiment weft_lab_race = {
    "race",
    "Threads incrementing a shared counter without synchronisation lose updates; a mutex, an "
    "atomic add and a CAS loop lose none.",
    race_run,
};
