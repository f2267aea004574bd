/*
 * check_then_act.c - the `check-then-act` experiment: "insert if absent"
 * into a shared hash table creates duplicates when the check and the insert
 * are separate steps, and none when they are one step.
 *
 * The table is open-addressed (linear probing) over 64-bit keys, 0 meaning
 * empty. Every slot is claimed with a CAS, so no write is ever lost: the
 * only flaw of the unguarded variant is the gap between "the key is absent"
 * and "claim a free slot for it". Two threads that both find the key absent
 * both claim a slot, and the key is in the table twice.
 *
 * Variants:
 *   unguarded   probe for the key; if absent, claim the first free slot.
 *   guarded     the same two steps under one weft mutex.
 *   atomic      one step: the CAS that claims a slot also re-checks, and a
 *               CAS that fails because the slot now holds our key means
 *               "present" (the lock-free fix).
 *
 * All threads insert the same keys in the same order, released together by
 * a gate every round, so they collide as often as the scheduler lets them.
 * Verdict: reproduced when the unguarded table holds at least one duplicate
 * and the guarded and atomic tables hold none.
 */
#include <stdio.h>
#include <stdlib.h>

#include "weft.h"
#include "lab/lab.h"

#define CTA_KEYS 256u   /* keys inserted per round */
#define CTA_SLOTS 4096u /* table capacity: room for every duplicate */
#define CTA_PREPARE 40u /* work between the check and the act (building the record) */

enum variant { V_UNGUARDED, V_GUARDED, V_ATOMIC, V_COUNT };
static const char *const variant_name[V_COUNT] = {"unguarded", "guarded", "atomic"};

struct cta_shared {
    enum variant v;
    unsigned nthreads;
    uint64_t rounds;
    uint64_t dups;            /* written by thread 0 between gates */
    uint64_t slot[CTA_SLOTS]; /* atomic; 0 = empty */
    weft_mutex_t mu;
    struct weft_lab_gate gate;
};

static unsigned home(uint64_t key)
{
    return (unsigned)((key * 0x9E3779B97F4A7C15ULL) >> 52) % CTA_SLOTS;
}

/* The check: true if key is in the table. */
static bool cta_contains(struct cta_shared *sh, uint64_t key)
{
    for (unsigned i = home(key), n = 0; n < CTA_SLOTS; i = (i + 1) % CTA_SLOTS, n++) {
        /* Relaxed: the key itself is the only data; no payload to publish. */
        uint64_t k = __atomic_load_n(&sh->slot[i], __ATOMIC_RELAXED);
        if (k == key)
            return true;
        if (k == 0)
            return false;
    }
    return false;
}

/* The act: claim the first free slot for key, whatever the other slots hold. */
static void cta_claim(struct cta_shared *sh, uint64_t key)
{
    for (unsigned i = home(key), n = 0; n < CTA_SLOTS; i = (i + 1) % CTA_SLOTS, n++) {
        uint64_t k = 0;
        if (__atomic_compare_exchange_n(&sh->slot[i], &k, key, false, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
            return;
    }
}

/* Check and act in one step per slot: a slot is either found holding key
 * (present) or claimed by our CAS; a CAS that loses to our own key means
 * present too. No window between the check and the act. */
static void cta_insert_atomic(struct cta_shared *sh, uint64_t key)
{
    for (unsigned i = home(key), n = 0; n < CTA_SLOTS; i = (i + 1) % CTA_SLOTS, n++) {
        uint64_t k = __atomic_load_n(&sh->slot[i], __ATOMIC_RELAXED);
        if (k == 0 && __atomic_compare_exchange_n(&sh->slot[i], &k, key, false, __ATOMIC_RELAXED,
                                                  __ATOMIC_RELAXED))
            return;
        if (k == key)
            return;
    }
}

static void cta_insert(struct cta_shared *sh, uint64_t key, uint64_t *sink)
{
    switch (sh->v) {
    case V_UNGUARDED:
        if (!cta_contains(sh, key)) {
            *sink += weft_lab_work(CTA_PREPARE, key);
            cta_claim(sh, key);
        }
        break;
    case V_GUARDED:
        weft_mutex_lock(&sh->mu);
        if (!cta_contains(sh, key)) {
            *sink += weft_lab_work(CTA_PREPARE, key);
            cta_claim(sh, key);
        }
        weft_mutex_unlock(&sh->mu);
        break;
    default:
        if (!cta_contains(sh, key)) {
            *sink += weft_lab_work(CTA_PREPARE, key);
            cta_insert_atomic(sh, key);
        }
    }
}

/* Duplicates left in the table: occupied slots minus distinct keys. */
static uint64_t count_duplicates(const struct cta_shared *sh)
{
    uint64_t occupied = 0;
    for (unsigned i = 0; i < CTA_SLOTS; i++)
        occupied += __atomic_load_n(&sh->slot[i], __ATOMIC_RELAXED) != 0;
    return occupied > CTA_KEYS ? occupied - CTA_KEYS : 0;
}

struct cta_worker {
    struct cta_shared *sh;
    unsigned id;
    uint64_t sink; /* keeps the prepare work alive */
};

/*
 * Each round: a gate releases everyone onto an empty table, all insert the
 * round's keys, a second gate waits for the last insert, then thread 0 counts
 * the duplicates and clears the table. The next round's first gate orders
 * that clearing before anyone's next insert.
 */
static void *cta_thread(void *arg)
{
    struct cta_worker *w = arg;
    struct cta_shared *sh = w->sh;
    for (uint64_t r = 0; r < sh->rounds; r++) {
        weft_lab_gate_wait(&sh->gate);
        for (uint64_t k = 1; k <= CTA_KEYS; k++)
            cta_insert(sh, r * CTA_KEYS + k, &w->sink);
        weft_lab_gate_wait(&sh->gate);
        if (w->id == 0) {
            sh->dups += count_duplicates(sh);
            for (unsigned i = 0; i < CTA_SLOTS; i++)
                __atomic_store_n(&sh->slot[i], 0, __ATOMIC_RELAXED);
        }
    }
    return NULL;
}

static int run_variant(struct cta_shared *sh, enum variant v, uint64_t *dups, double *ns)
{
    struct cta_worker w[8];
    sh->v = v;
    sh->dups = 0;
    weft_lab_gate_init(&sh->gate, sh->nthreads);
    for (unsigned i = 0; i < sh->nthreads; i++)
        w[i] = (struct cta_worker){sh, i, 0};
    uint64_t t0 = weft_now_ns();
    int rc = weft_lab_run_threads(sh->nthreads, cta_thread, w, sizeof w[0], 30000000000LL);
    if (rc != 0)
        return rc;
    *dups = sh->dups;
    *ns = (double)(weft_now_ns() - t0) / (double)(sh->rounds * CTA_KEYS * sh->nthreads);
    return 0;
}

static int cta_run(struct weft_lab_ctx *ctx)
{
    struct cta_shared *sh = calloc(1, sizeof *sh);
    if (sh == NULL)
        return weft_lab_fail(ctx, -ENOMEM, "table");
    sh->nthreads = ctx->cpus < 2 ? 2 : ctx->cpus > 8 ? 8 : ctx->cpus;
    sh->rounds = weft_lab_scale(ctx, 2000);
    weft_mutex_init(&sh->mu, "check_then_act.table");
    static const char *const cols[] = {"duplicates", "per 1000 keys", "ns/insert"};
    weft_lab_table(ctx, "insert-if-absent into a shared table", 3, cols);
    uint64_t dup[V_COUNT];
    for (int v = 0; v < V_COUNT; v++) {
        double ns;
        int rc = run_variant(sh, (enum variant)v, &dup[v], &ns);
        if (rc != 0) {
            free(sh);
            return weft_lab_fail(ctx, rc, "threads for variant %s", variant_name[v]);
        }
        char key[64];
        snprintf(key, sizeof key, "duplicates_%s", variant_name[v]);
        weft_lab_metric(ctx, key, (double)dup[v]);
        snprintf(key, sizeof key, "ns_per_insert_%s", variant_name[v]);
        weft_lab_metric(ctx, key, ns);
        weft_lab_row(ctx, variant_name[v], (double)dup[v],
                     1000.0 * (double)dup[v] / (double)(sh->rounds * CTA_KEYS), ns);
    }
    uint64_t rounds = sh->rounds;
    unsigned nthreads = sh->nthreads;
    free(sh);
    weft_lab_metric(ctx, "threads", nthreads);
    weft_lab_metric(ctx, "keys", (double)(rounds * CTA_KEYS));
    weft_lab_plot(ctx, WEFT_LAB_PLOT_BARS, 1u << 1, false, "variant", "duplicates per 1000 keys");
    bool fixed = dup[V_GUARDED] == 0 && dup[V_ATOMIC] == 0;
    weft_lab_verdict(ctx, dup[V_UNGUARDED] > 0 && fixed);
    weft_lab_note(ctx,
                  "%u threads each inserted the same %llu keys (%u per round, released "
                  "together).",
                  nthreads, (unsigned long long)(rounds * CTA_KEYS), CTA_KEYS);
    if (dup[V_UNGUARDED] > 0)
        weft_lab_note(ctx,
                      "Unguarded, %llu keys were inserted twice: both threads checked, "
                      "found the key absent, then both inserted it.",
                      (unsigned long long)dup[V_UNGUARDED]);
    else
        weft_lab_note(ctx, "Unguarded inserts made no duplicate this time: the window between "
                           "check and act is short and the threads did not overlap in it.");
    weft_lab_note_load(ctx);
    weft_lab_note(ctx, fixed ? "Under the mutex, and with the one-step CAS insert, no key was "
                               "duplicated."
                             : "A fixed variant made duplicates: that is a bug in weft.");
    return 0;
}

const struct weft_lab_experiment weft_lab_check_then_act = {
    "check-then-act",
    "\"Insert if absent\" from several threads creates duplicates when the check and the "
    "insert are separate steps; doing both under one lock (or in one CAS) creates none.",
    cta_run,
};
