/*
 * graph.c - the acquired-before graph (potential deadlocks) and the
 * wait-for walk (actual deadlocks).
 *
 * Acquired-before: when a thread blocks for TO while holding FROM, the edge
 * FROM -> TO is recorded. A path TO -> ... -> FROM already in the graph
 * closes a cycle: some interleaving of the threads that took those edges
 * hangs, whether or not it hung this time. Reported once per set of locks.
 *
 * Not reported, because no interleaving can hang:
 *  - try-lock acquisitions create no edge (they never wait);
 *  - a cycle all of whose edges were only ever taken while one common lock
 *    (the gate) was held exclusively: the gate serialises them;
 *  - cycles through a pthread rwlock held shared on both sides (glibc's
 *    default rwlock lets a second reader in while the first holds it);
 *  - locks of one kind taken in address order never form a cycle here,
 *    because the graph is per lock instance, not per class.
 */
#include <stdlib.h>
#include <string.h>

#include "check/check_internal.h"

#define WEFT__CK_DFS_MAX 64

static bool weft__ck_ecache_hit(weft__ckthread_t *t, uint64_t key)
{
    return t->ecache[weft__ck_eslot(key)] == key;
}

/* Caller holds weft__ck.lock. */
static weft__ckedge_t *weft__ck_find_edge(weft__cknode_t *from, const weft__cknode_t *to)
{
    for (uint32_t i = 0; i < from->nout; i++)
        if (from->out[i].to == to && from->out[i].to_gen == to->gen)
            return &from->out[i];
    return NULL;
}

/* The gates: locks the thread holds exclusively now, other than `from`. */
static uint8_t weft__ck_gates_now(const weft__ckthread_t *t, const weft__cknode_t *from,
                                  weft__cknode_t **g)
{
    uint8_t n = 0;
    for (unsigned i = 0; i < t->nheld && n < WEFT__CK_GATES; i++)
        if (t->held[i].n != from && !(t->held[i].flags & WEFT__CK_READ))
            g[n++] = t->held[i].n;
    return n;
}

/* Keep only the gates present in both sets (every observation). */
static void weft__ck_gates_intersect(weft__ckedge_t *e, weft__cknode_t *const *g, uint8_t ng)
{
    uint8_t k = 0;
    for (uint8_t i = 0; i < e->ngates; i++)
        for (uint8_t j = 0; j < ng; j++)
            if (e->gates[i] == g[j]) {
                e->gates[k++] = e->gates[i];
                break;
            }
    e->ngates = k;
}

/* Caller holds weft__ck.lock. */
static weft__ckedge_t *weft__ck_new_edge(weft__ckthread_t *t, weft__cknode_t *from,
                                         const weft__ckheld_t *h, weft__cknode_t *to,
                                         unsigned flags)
{
    if (from->nout == from->capout) {
        uint32_t cap = from->capout ? from->capout * 2 : 4;
        weft__ckedge_t *o = realloc(from->out, cap * sizeof *o);
        if (o == NULL)
            return NULL;
        from->out = o;
        from->capout = cap;
    }
    weft__ckedge_t *e = &from->out[from->nout++];
    memset(e, 0, sizeof *e);
    e->to = to;
    e->to_gen = to->gen;
    e->tid = t->tid;
    e->to_read = (flags & WEFT__CK_READ) != 0;
    e->from_read = (h->flags & WEFT__CK_READ) != 0;
    e->from_site = h->site;
    e->ngates = weft__ck_gates_now(t, from, e->gates);
    e->nbt = weft__backtrace(e->bt, WEFT__BT_MAX, 3);
    return e;
}

/* Depth-first search for a path from `at` to `goal`; fills path[] with the
 * edges taken. Caller holds weft__ck.lock. Returns the path length or 0. */
static int weft__ck_dfs(weft__cknode_t *at, const weft__cknode_t *goal, weft__ckedge_t **path,
                        int depth, weft__cknode_t **seen, int *nseen)
{
    if (depth >= WEFT__CK_DFS_MAX)
        return 0;
    for (int i = 0; i < *nseen; i++)
        if (seen[i] == at)
            return 0;
    if (*nseen < 4 * WEFT__CK_DFS_MAX)
        seen[(*nseen)++] = at;
    for (uint32_t i = 0; i < at->nout; i++) {
        weft__ckedge_t *e = &at->out[i];
        if (!e->to->alive || e->to_gen != e->to->gen)
            continue;
        path[depth] = e;
        if (e->to == goal)
            return depth + 1;
        int n = weft__ck_dfs(e->to, goal, path, depth + 1, seen, nseen);
        if (n > 0)
            return n;
    }
    return 0;
}

/* True when some lock gates every edge of the cycle. */
static bool weft__ck_gated(weft__ckedge_t *const *cyc, int n)
{
    for (uint8_t g = 0; g < cyc[0]->ngates; g++) {
        bool all = true;
        for (int i = 1; i < n && all; i++) {
            bool has = false;
            for (uint8_t j = 0; j < cyc[i]->ngates; j++)
                has |= cyc[i]->gates[j] == cyc[0]->gates[g];
            all = has;
        }
        if (all)
            return true;
    }
    return false;
}

/* A pthread rwlock taken shared on both sides of the cycle cannot block. */
static bool weft__ck_shared_only(weft__ckedge_t *const *cyc, int n)
{
    for (int i = 0; i < n; i++) {
        const weft__ckedge_t *in = cyc[i], *out = cyc[(i + 1) % n];
        if (in->to->kind == WEFT__LK_PRWLOCK && in->to_read && out->from_read)
            return true;
    }
    return false;
}


/* Record FROM -> TO for one held lock; check for a cycle if it is new. */
static void weft__ck_edge(weft__ckthread_t *t, const weft__ckheld_t *h, weft__cknode_t *to,
                          unsigned flags)
{
    weft__cknode_t *from = h->n;
    if (from == to || !from->alive || h->gen != from->gen)
        return;
    uint64_t key = weft__ck_edge_key(from, to);
    if (weft__ck_ecache_hit(t, key))
        return;
    weft__cknode_t *g[WEFT__CK_GATES];
    uint8_t ng = weft__ck_gates_now(t, from, g);
    weft__rawlock_lock(&weft__ck.lock);
    weft__ckedge_t *e = weft__ck_find_edge(from, to);
    bool fresh = e == NULL;
    uint8_t before = fresh ? 0 : e->ngates;
    if (fresh)
        e = weft__ck_new_edge(t, from, h, to, flags);
    else
        weft__ck_gates_intersect(e, g, ng);
    /* A known edge can only close a new cycle if it lost gates just now. */
    if (!fresh && e->ngates == before) {
        if (e->ngates == 0)
            t->ecache[weft__ck_eslot(key)] = key;
        weft__rawlock_unlock(&weft__ck.lock);
        return;
    }
    if (e != NULL && e->ngates == 0)
        t->ecache[weft__ck_eslot(key)] = key; /* nothing more to learn */
    weft__ckedge_t *path[WEFT__CK_DFS_MAX + 1];
    weft__cknode_t *seen[4 * WEFT__CK_DFS_MAX];
    int nseen = 0;
    int len = e != NULL ? weft__ck_dfs(to, from, path, 0, seen, &nseen) : 0;
    if (len > 0 && len < WEFT__CK_DFS_MAX) {
        /* Cycle: the new edge first, then the path back to FROM. */
        weft__ckedge_t *cyc[WEFT__CK_DFS_MAX + 1];
        weft__cknode_t *nodes[WEFT__CK_DFS_MAX + 1];
        cyc[0] = e;
        nodes[0] = from;
        for (int i = 0; i < len; i++) {
            cyc[i + 1] = path[i];
            nodes[i + 1] = i == 0 ? to : path[i - 1]->to;
        }
        if (!weft__ck_gated(cyc, len + 1) && !weft__ck_shared_only(cyc, len + 1)) {
            weft__rawlock_unlock(&weft__ck.lock);
            weft__ck_report_inversion(t, cyc, len + 1, nodes);
            return;
        }
    }
    weft__rawlock_unlock(&weft__ck.lock);
}

void weft__ck_add_edges(weft__ckthread_t *t, weft__cknode_t *to, unsigned flags, void *site)
{
    (void)site;
    /* Recursive read of an rwlock already held shared adds nothing. */
    for (unsigned i = 0; i < t->nheld; i++)
        weft__ck_edge(t, &t->held[i], to, flags);
}

/*
 * ---- the wait-for walk -------------------------------------------------
 *
 * A blocked thread waits for the threads that hold what it wants:
 *  - a lock held exclusively: its owner;
 *  - a lock held shared (an rwlock): every reader. A writer gets in only
 *    when all of them have left, so one reader that never leaves keeps it
 *    out for ever. A reader that waits on a read-held weft rwlock waits
 *    behind a queued writer (writer preference), which in turn waits for
 *    the same readers: it too is kept out for ever by one reader that
 *    never leaves. Either way, ONE holder stuck in a wait that leads back
 *    is a deadlock (the AND case);
 *  - a semaphore: any single release lets the waiter in, so it is stuck
 *    only if EVERY permit holder is stuck in a wait that leads back (the OR
 *    case). Only semaphores whose ledger names every holder qualify: none
 *    on which a thread has released a permit it did not take (signalling),
 *    none with a permit held by an exited thread (a leak, reported as such).
 *
 * The walk starts at the waiting thread (the root) and succeeds when every
 * branch it must follow comes back to the root: the threads it passed then
 * form a closed set, each waiting only for members of the set. A branch
 * that meets a thread already on the path, other than the root, counts as
 * failed: that cycle does not contain the root, and its own threads report
 * it. The walk reads other threads' state without the lock (acquire loads
 * and relaxed held stacks): it can be stale, which is why the caller asks
 * for a cycle on two consecutive slices.
 */

#define WEFT__CK_FANOUT 8        /* holders followed per lock */
#define WEFT__CK_WALK_BUDGET 256 /* holders visited per walk, in all */

typedef struct weft__ckwalk {
    weft__ckthread_t *root;
    weft__cknode_t **cyc;   /* cyc[i]: what who[i-1] (the root for i = 0) waits for */
    weft__ckthread_t **who; /* who[i]: a holder of cyc[i] */
    int max;
    int budget;
} weft__ckwalk_t;

static bool weft__ck_is_sem(const weft__cknode_t *n)
{
    return n->kind == WEFT__LK_SEM || n->kind == WEFT__LK_PSEM;
}

static int weft__ck_stuck(weft__ckwalk_t *w, weft__cknode_t *n, int pos);

/* Holder o of cyc[pos]: the length of the cycle through it, or 0. */
static int weft__ck_via(weft__ckwalk_t *w, weft__cknode_t *n, weft__ckthread_t *o, int pos)
{
    if (--w->budget < 0)
        return 0;
    w->cyc[pos] = n;
    w->who[pos] = o;
    if (o == w->root)
        return pos + 1;
    for (int i = 0; i < pos; i++)
        if (w->who[i] == o)
            return 0;
    /* Acquire: pairs with the release store of waiting_on in
     * weft__check_acquire_pre() and weft__check_sem_wait_begin(). */
    weft__cknode_t *m = __atomic_load_n(&o->waiting_on, __ATOMIC_ACQUIRE);
    return m != NULL ? weft__ck_stuck(w, m, pos + 1) : 0;
}

/* Every permit holder must lead back; the path kept is the first one's,
 * so it is walked last. */
static int weft__ck_stuck_sem(weft__ckwalk_t *w, weft__cknode_t *n, int pos)
{
    weft__ckthread_t *h[WEFT__CK_FANOUT];
    int k = weft__ck_permit_holders(n, h, WEFT__CK_FANOUT);
    if (k <= 0)
        return 0;
    for (int i = k - 1; i > 0; i--)
        if (weft__ck_via(w, n, h[i], pos) == 0)
            return 0;
    return weft__ck_via(w, n, h[0], pos);
}

/* The waiter of cyc[pos] waits for n: the cycle length, or 0. */
static int weft__ck_stuck(weft__ckwalk_t *w, weft__cknode_t *n, int pos)
{
    if (pos >= w->max)
        return 0;
    if (weft__ck_is_sem(n))
        return weft__ck_stuck_sem(w, n, pos);
    weft__ckthread_t *h[WEFT__CK_FANOUT];
    int k = weft__ck_holders(n, h, WEFT__CK_FANOUT);
    for (int i = 0; i < k; i++) {
        int len = weft__ck_via(w, n, h[i], pos);
        if (len > 0)
            return len;
    }
    return 0;
}

int weft__ck_waitfor_cycle(weft__ckthread_t *t, weft__cknode_t *n, weft__cknode_t **cyc,
                           weft__ckthread_t **who, int max)
{
    weft__ckwalk_t w = {t, cyc, who, max, WEFT__CK_WALK_BUDGET};
    return weft__ck_stuck(&w, n, 0);
}
