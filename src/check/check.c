/*
 * check.c - the check layer's entry points: switching it on, per-thread
 * state, lock nodes, and the hooks the sync layer and the preload library
 * call around every lock operation (see src/internal/check.h).
 *
 * What it promises: while off, nothing here runs (the callers test
 * WEFT__INSTRUMENTED() first). While on, a hook never blocks on anything but
 * weft__ck.lock, never calls the primitives it watches, and never changes
 * what the watched operation does: it only observes and reports.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check/check_internal.h"
#include "internal/instrument.h"
#include "weft/check.h"

struct weft__ckglobal weft__ck = {.lock = WEFT__RAWLOCK_INIT};
struct weft__ckhot weft__ck_hot;

__thread weft__ckthread_t *weft__ck_tls __attribute__((tls_model("initial-exec")));
static pthread_key_t weft__ck_key;
static pthread_once_t weft__ck_key_once = PTHREAD_ONCE_INIT;

/* ---- switching on --------------------------------------------------------- */

int weft_check_enable(void)
{
    __atomic_fetch_or(&weft__instr, WEFT__INSTR_CHECK, __ATOMIC_SEQ_CST);
    return 0;
}

bool weft_check_enabled(void)
{
    return (__atomic_load_n(&weft__instr, __ATOMIC_RELAXED) & WEFT__INSTR_CHECK) != 0;
}

bool weft__check_on(void)
{
    return weft_check_enabled();
}

/* WEFT_CHECK=1 (or any value but 0/empty) switches checking on at load. */
__attribute__((constructor)) static void weft__check_from_env(void)
{
    const char *v = getenv("WEFT_CHECK");
    if (v != NULL && v[0] != 0 && strcmp(v, "0") != 0)
        weft_check_enable();
}

/* WEFT_CHECK_STARVE_MS: how long a waiter may wait while others keep
 * acquiring before a starvation report (default 1000 ms). */
static uint64_t weft__ck_starve_ns(void)
{
    static uint64_t ns;
    if (ns == 0) {
        const char *v = getenv("WEFT_CHECK_STARVE_MS");
        long ms = v != NULL ? strtol(v, NULL, 10) : 0;
        ns = (uint64_t)(ms > 0 ? ms : 1000) * 1000000u;
    }
    return ns;
}

/* ---- per-thread state ----------------------------------------------------- */

static void weft__ck_thread_exit(void *p);

static void weft__ck_make_key(void)
{
    (void)pthread_key_create(&weft__ck_key, weft__ck_thread_exit);
}

weft__ckthread_t *weft__ck_self(void)
{
    weft__ckthread_t *t = weft__ck_tls;
    if (weft__likely(t != NULL))
        return t;
    t = calloc(1, sizeof *t);
    /* Aligned: each set of the context cache fills one cache line. */
    weft__ckcset_t *ctx = aligned_alloc(64, WEFT__CK_CSETS * sizeof *ctx);
    if (t == NULL || ctx == NULL) {
        free(t);
        free(ctx);
        return NULL;
    }
    memset(ctx, 0, WEFT__CK_CSETS * sizeof *ctx);
    t->ctx = ctx;
    t->sig = WEFT__CK_SIG0;
    t->tid = weft__tid();
    weft__ck_tls = t;
    (void)pthread_once(&weft__ck_key_once, weft__ck_make_key);
    (void)pthread_setspecific(weft__ck_key, t);
    weft__rawlock_lock(&weft__ck.lock);
    t->next = weft__ck.threads;
    /* Release: pairs with the acquire load in weft__ck_owner(). */
    __atomic_store_n(&weft__ck.threads, t, __ATOMIC_RELEASE);
    weft__rawlock_unlock(&weft__ck.lock);
    return t;
}

/* Thread exit: report permits it still holds (a leak); the record itself
 * stays (other threads' wait-for walks may still read it) but is marked. */
static void weft__ck_thread_exit(void *p)
{
    weft__ckthread_t *t = p;
    weft__ck_permits_at_exit(t);
    __atomic_store_n(&t->nheld, 0, __ATOMIC_RELAXED);
    t->sig = WEFT__CK_SIG0;
    /* Only this thread reads its context cache, and it is leaving. */
    t->busy = true;
    free(t->ctx);
    t->ctx = NULL;
    __atomic_store_n(&t->exited, true, __ATOMIC_RELEASE);
    weft__ck_tls = NULL;
}

/* After fork() only the forking thread exists in the child. */
static void weft__ck_atfork_child(void)
{
    weft__ck.lock.word = 0;
    weft__ckthread_t *self = weft__ck_tls;
    for (weft__ckthread_t *t = weft__ck.threads; t != NULL; t = t->next)
        if (t != self)
            t->exited = true;
    /* Straight from the kernel: the cached tid may not be reset yet (the
     * order of fork handlers is the order they were registered in). The
     * preload's lock path records t->tid as the pthread mutex owner. */
    if (self != NULL)
        self->tid = (uint32_t)syscall(SYS_gettid);
}

__attribute__((constructor)) static void weft__check_setup(void)
{
    pthread_atfork(NULL, NULL, weft__ck_atfork_child);
}

/* ---- nodes ---------------------------------------------------------------- */

/* A node stopped being alive: every context-cache entry made before now is
 * stale. Caller holds weft__ck.lock (which orders the bumps). Release:
 * pairs with the acquire loads of the epoch on the acquisition paths; a
 * thread that sees the new epoch also sees the node dead. */
static void weft__ck_epoch_bump(void)
{
    __atomic_store_n(&weft__ck_hot.epoch, weft__ck_hot.epoch + 1, __ATOMIC_RELEASE);
}

static size_t weft__ck_hash(const void *addr)
{
    uintptr_t a = (uintptr_t)addr;
    a ^= a >> 17;
    a *= 0x9E3779B97F4A7C15ull;
    return (size_t)(a >> 40) & (WEFT__CK_BUCKETS - 1);
}

/* Caller holds weft__ck.lock. */
static weft__cknode_t *weft__ck_find_locked(void *addr)
{
    for (weft__cknode_t *n = weft__ck.buckets[weft__ck_hash(addr)]; n != NULL; n = n->hnext)
        if (n->addr == addr && n->alive)
            return n;
    return NULL;
}

/* Caller holds weft__ck.lock. Dead nodes at the same address are reused. */
static weft__cknode_t *weft__ck_create_locked(const weft__ck_lock_t *l, void *site)
{
    size_t b = weft__ck_hash(l->addr);
    weft__cknode_t *n = NULL;
    for (weft__cknode_t *d = weft__ck.buckets[b]; d != NULL; d = d->hnext)
        if (!d->alive && d->addr == l->addr) {
            n = d;
            break;
        }
    if (n == NULL) {
        n = calloc(1, sizeof *n);
        if (n == NULL)
            return NULL;
        n->addr = l->addr;
        n->hnext = weft__ck.buckets[b];
        weft__ck.buckets[b] = n;
    }
    n->gen++;
    n->alive = true;
    n->kind = l->kind;
    n->name = l->name;
    n->first_site = site;
    n->nout = 0;
    return n;
}

weft__cknode_t *weft__ck_node(weft__ckthread_t *t, const weft__ck_lock_t *l, void *site)
{
    size_t slot = ((uintptr_t)l->addr >> 4) & (WEFT__CK_NCACHE - 1);
    weft__cknode_t *n = weft__ck_node_cached(t, l->addr);
    if (n != NULL)
        return n;
    weft__rawlock_lock(&weft__ck.lock);
    n = weft__ck_find_locked(l->addr);
    if (n == NULL)
        n = weft__ck_create_locked(l, site);
    else if (n->name == NULL && l->name != NULL)
        n->name = l->name;
    uint32_t gen = n != NULL ? n->gen : 0;
    weft__rawlock_unlock(&weft__ck.lock);
    if (n != NULL) {
        t->ncache[slot].addr = l->addr;
        t->ncache[slot].n = n;
        t->ncache[slot].gen = gen;
    }
    return n;
}

void weft__check_lock_new(const weft__ck_lock_t *l)
{
    weft__ckthread_t *t = weft__ck_self();
    if (t == NULL || t->busy)
        return;
    weft__rawlock_lock(&weft__ck.lock);
    weft__cknode_t *old = weft__ck_find_locked(l->addr);
    if (old != NULL) {
        __atomic_store_n(&old->alive, false, __ATOMIC_RELEASE);
        weft__ck_epoch_bump();
    }
    (void)weft__ck_create_locked(l, NULL);
    weft__rawlock_unlock(&weft__ck.lock);
}

void weft__check_lock_destroy(const weft__ck_lock_t *l, bool held)
{
    weft__ckthread_t *t = weft__ck_self();
    if (t == NULL || t->busy)
        return;
    if (held) {
        weft__ck_report_destroy_held(t, l);
        return;
    }
    weft__rawlock_lock(&weft__ck.lock);
    weft__cknode_t *n = weft__ck_find_locked(l->addr);
    if (n != NULL) {
        /* Forget its edges; other nodes' edges to it carry the old
         * generation and are ignored from now on. */
        __atomic_store_n(&n->alive, false, __ATOMIC_RELEASE);
        n->nout = 0;
        weft__ck_epoch_bump();
    }
    weft__rawlock_unlock(&weft__ck.lock);
}

/* ---- the held stack ------------------------------------------------------- */

static int weft__ck_held_index(const weft__ckthread_t *t, const weft__cknode_t *n)
{
    for (int i = (int)t->nheld - 1; i >= 0; i--)
        if (t->held[i].n == n && t->held[i].gen == n->gen)
            return i;
    return -1;
}

static inline void weft__ck_push(weft__ckthread_t *t, weft__cknode_t *n, unsigned flags,
                                 void *site)
{
    weft__ck_push_at(t, t->nheld, n, n->gen, flags, site, n->addr,
                     weft__ck_sig_push(t->sig, n, flags));
}

/* Remove entry i; the entries above it move down, and their signatures
 * are recomputed for the stack they now sit on. */
static void weft__ck_pop(weft__ckthread_t *t, int i)
{
    unsigned last = t->nheld - 1;
    uint64_t sig = t->held[i].sig_below;
    for (unsigned k = (unsigned)i; k < last; k++) {
        weft__ckheld_t *h = &t->held[k], *up = &t->held[k + 1];
        __atomic_store_n(&h->gen, up->gen, __ATOMIC_RELAXED);
        __atomic_store_n(&h->flags, up->flags, __ATOMIC_RELAXED);
        __atomic_store_n(&h->site, up->site, __ATOMIC_RELAXED);
        __atomic_store_n(&h->n, up->n, __ATOMIC_RELAXED);
        h->addr = up->addr;
        h->sig_below = sig;
        sig = weft__ck_sig_push(sig, up->n, up->flags);
    }
    t->sig = sig;
    __atomic_store_n(&t->nheld, last, __ATOMIC_RELAXED);
}

weft__ckthread_t *weft__ck_owner(weft__cknode_t *n, void **site)
{
    /* The thread list only grows at its head and records are never freed:
     * it can be walked without the lock. Acquire: pairs with the release
     * store of the head in weft__ck_self(). */
    for (weft__ckthread_t *o = __atomic_load_n(&weft__ck.threads, __ATOMIC_ACQUIRE); o != NULL;
         o = o->next) {
        if (__atomic_load_n(&o->exited, __ATOMIC_ACQUIRE))
            continue;
        unsigned k = __atomic_load_n(&o->nheld, __ATOMIC_RELAXED);
        for (unsigned i = 0; i < k && i < WEFT__CK_HELD_MAX; i++)
            if (__atomic_load_n(&o->held[i].n, __ATOMIC_RELAXED) == n &&
                !(__atomic_load_n(&o->held[i].flags, __ATOMIC_RELAXED) & WEFT__CK_READ)) {
                if (site != NULL)
                    *site = __atomic_load_n(&o->held[i].site, __ATOMIC_RELAXED);
                return o;
            }
    }
    return NULL;
}

/* ---- acquisition hooks ---------------------------------------------------- */

/* Starvation evidence: acquisitions of n are counted while some thread's
 * wait on it has lasted a slice (n->nwaiting). Only exclusive holders
 * count, and the lock serialises them: a load and a store suffice. */
void weft__ck_count_acquisition(weft__cknode_t *n, unsigned flags)
{
    if (!(flags & WEFT__CK_READ) && __atomic_load_n(&n->nwaiting, __ATOMIC_RELAXED))
        __atomic_store_n(&n->acquisitions, __atomic_load_n(&n->acquisitions, __ATOMIC_RELAXED) + 1,
                         __ATOMIC_RELAXED);
}

/* Remember that acquiring l in t's current held context (signature sig)
 * records nothing new: its edges are in the graph, its node is n. `epoch`
 * was read before the node was looked up. */
static void weft__ck_ctx_insert(weft__ckthread_t *t, uint64_t sig, const weft__ck_lock_t *l,
                                unsigned flags, weft__cknode_t *n, uint32_t epoch)
{
    uint64_t key = weft__ck_ctx_key(sig, l->addr, flags, epoch);
    weft__ckcset_t *set = weft__ck_ctx_set(t, key);
    set->way[1] = set->way[0];
    set->way[0] = (weft__ckctx_t){.key = key,
                                  .n = n,
                                  .sig = weft__ck_sig_push(sig, n, flags),
                                  .gen = __atomic_load_n(&n->gen, __ATOMIC_RELAXED)};
}

/* The node of l, with the order edges of acquiring it now recorded: from
 * the context cache when this context was seen before, else looked up and
 * recorded, and the context remembered. */
static weft__cknode_t *weft__ck_enter(weft__ckthread_t *t, const weft__ck_lock_t *l,
                                      unsigned flags, void *site)
{
    const weft__ckctx_t *e = weft__ck_ctx_find(t, l->addr, flags);
    if (e != NULL)
        return e->n;
    /* Acquire: pairs with the release in weft__ck_epoch_bump(). */
    uint32_t epoch = __atomic_load_n(&weft__ck_hot.epoch, __ATOMIC_ACQUIRE);
    weft__cknode_t *n = weft__ck_node(t, l, site);
    if (n == NULL)
        return NULL;
    if (!(flags & WEFT__CK_TRY) && t->nheld > 0)
        weft__ck_add_edges(t, n, flags, site);
    weft__ck_ctx_insert(t, t->sig, l, flags, n, epoch);
    return n;
}

void weft__check_acquire_pre(const weft__ck_lock_t *l, unsigned flags, void *site)
{
    weft__ckthread_t *t = weft__ck_self();
    if (t == NULL || t->busy)
        return;
    t->busy = true;
    weft__cknode_t *n = weft__ck_enter(t, l, flags, site);
    t->pending = n;
    t->pending_addr = l->addr;
    if (n != NULL && !(flags & WEFT__CK_TRY)) {
        t->waiting_gen = n->gen;
        t->deadlock_seen = 0;
        /* Release: pairs with the acquire loads in the wait-for walk
         * (weft__ck_waitfor_cycle) of other threads. */
        __atomic_store_n(&t->waiting_on, n, __ATOMIC_RELEASE);
    }
    t->busy = false;
}

/* The acquisition when this context is not in the cache. */
static WEFT__COLD void weft__check_acquired_slow(weft__ckthread_t *t, const weft__ck_lock_t *l,
                                                unsigned flags, void *site)
{
    t->busy = true;
    weft__cknode_t *n = weft__ck_enter(t, l, flags, site);
    if (n != NULL) {
        weft__ck_push(t, n, flags, site);
        weft__ck_count_acquisition(n, flags);
    }
    t->busy = false;
}

/*
 * The common case in one call: the lock was acquired without waiting (the
 * first attempt succeeded). Records the order edges it implies and pushes
 * it on the held stack. Touches only this thread's state on the fast path
 * and never calls into libc there, so errno is preserved.
 */
void weft__check_acquired(const weft__ck_lock_t *l, unsigned flags, void *site)
{
    weft__ckthread_t *t = weft__ck_tls;
    if (weft__unlikely(t == NULL) && (t = weft__ck_self()) == NULL)
        return;
    if (t->busy || weft__ck_acquired_fast(t, l->addr, flags, site))
        return;
    weft__check_acquired_slow(t, l, flags, site);
}

void weft__check_acquire_post(const weft__ck_lock_t *l, unsigned flags, bool acquired,
                              void *site)
{
    weft__ckthread_t *t = weft__ck_self();
    if (t == NULL || t->busy)
        return;
    weft__cknode_t *w = __atomic_load_n(&t->waiting_on, __ATOMIC_RELAXED);
    if (w != NULL) {
        __atomic_store_n(&t->waiting_on, NULL, __ATOMIC_RELEASE);
        if (t->wait_counted) {
            t->wait_counted = false;
            __atomic_fetch_sub(&w->nwaiting, 1, __ATOMIC_RELAXED);
            __atomic_fetch_sub(&weft__ck_hot.long_waiters, 1, __ATOMIC_RELAXED);
        }
    }
    if (!acquired)
        return;
    t->busy = true;
    weft__cknode_t *n = t->pending_addr == l->addr && t->pending != NULL
                            ? t->pending
                            : weft__ck_node(t, l, site);
    t->pending = NULL;
    t->pending_addr = NULL;
    if (n != NULL) {
        weft__ck_push(t, n, flags, site);
        weft__ck_count_acquisition(n, flags);
    }
    t->busy = false;
}

static WEFT__COLD int weft__check_release_slow(const weft__ck_lock_t *l, unsigned flags,
                                              void *site)
{
    weft__ckthread_t *t = weft__ck_self();
    if (t == NULL || t->busy)
        return 0;
    int saved_errno = errno; /* the slow path may call into libc */
    t->busy = true;
    int r = 0;
    weft__cknode_t *n = weft__ck_node(t, l, site);
    int i = n != NULL ? weft__ck_held_index(t, n) : -1;
    if (i >= 0) {
        weft__ck_pop(t, i);
    } else if (n != NULL && !(flags & WEFT__CK_READ)) {
        weft__ckthread_t *o = weft__ck_owner(n, NULL);
        if (o != NULL && o != t) {
            weft__ck_report_bad_unlock(t, n, site);
            r = -EPERM;
        }
    }
    t->busy = false;
    errno = saved_errno;
    return r;
}

int weft__check_release(const weft__ck_lock_t *l, unsigned flags, void *site)
{
    weft__ckthread_t *t = weft__ck_tls;
    if (weft__likely(t != NULL && !t->busy && weft__ck_release_fast(t, l->addr)))
        return 0;
    return weft__check_release_slow(l, flags, site);
}

int weft__check_blocked(const weft__ck_lock_t *l, unsigned flags, uint64_t waited_ns)
{
    (void)l;
    weft__ckthread_t *t = weft__ck_self();
    if (t == NULL || t->busy)
        return 0;
    weft__cknode_t *n = __atomic_load_n(&t->waiting_on, __ATOMIC_RELAXED);
    if (n == NULL)
        return 0;
    /* Permits are not acquisitions: semaphores have their own report. */
    bool sem = n->kind == WEFT__LK_SEM || n->kind == WEFT__LK_PSEM;
    if (!sem && !t->wait_counted) {
        /* The wait has lasted a slice: from now on holders count their
         * acquisitions of n (see weft__ck_count_acquisition). seq_cst: a
         * holder that does not see this only delays a starvation report. */
        t->wait_counted = true;
        __atomic_fetch_add(&weft__ck_hot.long_waiters, 1, __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&n->nwaiting, 1, __ATOMIC_SEQ_CST);
        t->wait_acq0 = __atomic_load_n(&n->acquisitions, __ATOMIC_RELAXED);
    }
    t->busy = true;
    weft__cknode_t *cyc[16];
    weft__ckthread_t *who[16];
    int len = weft__ck_waitfor_cycle(t, n, cyc, who, 16);
    int r = 0;
    /* A real deadlock is stable: require a cycle on two consecutive slices,
     * so a walk that raced with a release never reports. */
    if (len > 0 && ++t->deadlock_seen >= 2) {
        weft__ck_report_waitfor(t, cyc, who, len, flags);
        r = -EDEADLK;
    } else if (len == 0) {
        t->deadlock_seen = 0;
    }
    /* Starvation: past the threshold while others keep acquiring. */
    uint64_t others = __atomic_load_n(&n->acquisitions, __ATOMIC_RELAXED) - t->wait_acq0;
    if (r == 0 && !sem && waited_ns >= weft__ck_starve_ns() && others >= 100)
        weft__ck_report_starvation(t, n, waited_ns, others);
    t->busy = false;
    return r;
}

void weft__check_self_deadlock(const weft__ck_lock_t *l, void *site)
{
    weft__ckthread_t *t = weft__ck_self();
    if (t == NULL || t->busy)
        return;
    t->busy = true;
    weft__cknode_t *n = weft__ck_node(t, l, site);
    if (n != NULL) {
        weft__cknode_t *cyc[1] = {n};
        weft__ckthread_t *who[1] = {t};
        weft__ck_report_deadlock(t, cyc, who, 1);
    }
    t->busy = false;
}

unsigned weft_check_report_count(void)
{
    return __atomic_load_n(&weft__ck.reports, __ATOMIC_RELAXED);
}

/* ---- holders, for the wait-for walk and its report ------------------------ */

static bool weft__ck_listed(weft__ckthread_t *const *out, int k, const weft__ckthread_t *o)
{
    for (int i = 0; i < k; i++)
        if (out[i] == o)
            return true;
    return false;
}

/* Walks the thread list like weft__ck_owner(), without the lock. */
int weft__ck_holders(weft__cknode_t *n, weft__ckthread_t **out, int max)
{
    int k = 0;
    for (weft__ckthread_t *o = __atomic_load_n(&weft__ck.threads, __ATOMIC_ACQUIRE); o != NULL;
         o = o->next) {
        if (__atomic_load_n(&o->exited, __ATOMIC_ACQUIRE))
            continue;
        int f = weft__ck_held_by(o, n, NULL);
        if (f < 0)
            continue;
        if (!(f & WEFT__CK_READ)) {
            out[0] = o; /* an exclusive holder is the only one */
            return 1;
        }
        if (k < max && !weft__ck_listed(out, k, o))
            out[k++] = o;
    }
    return k;
}

int weft__ck_held_by(const weft__ckthread_t *o, const weft__cknode_t *n, void **site)
{
    unsigned k = __atomic_load_n(&o->nheld, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < k && i < WEFT__CK_HELD_MAX; i++)
        if (__atomic_load_n(&o->held[i].n, __ATOMIC_RELAXED) == n) {
            if (site != NULL)
                *site = __atomic_load_n(&o->held[i].site, __ATOMIC_RELAXED);
            return (int)__atomic_load_n(&o->held[i].flags, __ATOMIC_RELAXED);
        }
    return -1;
}
