/*
 * Private data structures of the check layer, shared by its files.
 *
 * DESIGN
 * Nodes: one per lock life (address + generation), allocated from an
 * append-only arena and never returned to the system, so a stale pointer in
 * a per-thread cache is always safe to read and is recognised by its
 * address and generation.
 * Edges: "while holding FROM, a thread blocked-acquired TO", each stored
 * once, on FROM, with the first thread's stack. The graph is checked for a
 * cycle only when an edge is new to the whole process; each thread caches
 * the edges it has already contributed, so steady-state lock nesting costs
 * a hash probe per held lock and no shared writes.
 * Threads: per-thread state (held stack, caches, what it waits on) is
 * reached through one initial-exec TLS pointer.
 * The fast path: every held-stack entry carries a signature of the stack
 * up to it (the held locks and their modes). An acquisition looks up
 * (signature, lock, mode) in a per-thread two-way context cache; a hit means
 * this thread has already recorded every edge this acquisition implies, so
 * it only pushes the lock. A hit is valid while the global epoch is
 * unchanged: every end of a lock's life (destroy, re-init) bumps it. So the
 * fast path reads only this thread's lines and one read-mostly global line.
 * Locking: one raw futex lock (weft__ck.lock) guards the node table and the
 * graph. It is taken only for new nodes, new edges and reports.
 */
#ifndef WEFT_CHECK_INTERNAL_H
#define WEFT_CHECK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "internal/backtrace.h"
#include "internal/check.h"
#include "internal/rawlock.h"

#define WEFT__CK_HELD_MAX 64
#define WEFT__CK_GATES 4
#define WEFT__CK_ECACHE 1024 /* per-thread edge cache slots (power of 2) */
#define WEFT__CK_NCACHE 256  /* per-thread node cache slots (power of 2) */
#define WEFT__CK_BUCKETS 4096
#define WEFT__CK_CSETS_LOG2 10 /* per-thread context cache: 1024 sets of two */
#define WEFT__CK_CSETS (1u << WEFT__CK_CSETS_LOG2)
#define WEFT__CK_SIG0 0x6A09E667F3BCC909ull /* signature of the empty held stack */

struct weft__ckthread;

typedef struct weft__ckedge {
    struct weft__cknode *to;
    uint32_t to_gen;
    uint32_t tid;       /* thread that first took this edge */
    bool to_read;       /* TO was taken shared */
    bool from_read;     /* FROM was held shared */
    uint8_t ngates;     /* locks held (exclusively) every time, besides FROM */
    struct weft__cknode *gates[WEFT__CK_GATES];
    void *from_site;    /* where FROM was acquired */
    int nbt;            /* where TO was acquired */
    void *bt[WEFT__BT_MAX];
} weft__ckedge_t;

typedef struct weft__cknode {
    void *addr;                    /* protected by weft__ck.lock */
    uint32_t gen;                  /* bumped for every new life at addr */
    bool alive;
    int kind;
    const char *name;              /* weft name, or NULL */
    void *first_site;              /* first acquisition site, for naming */
    weft__ckedge_t *out;           /* protected by weft__ck.lock */
    uint32_t nout, capout;
    struct weft__cknode *hnext;    /* hash chain; protected by weft__ck.lock */
    /* semaphores: the permit ledger; protected by weft__ck.lock */
    struct weft__ckpermit *permits;
    bool sem_resource;             /* a permit was released by its taker */
    bool sem_signal;               /* a permit was released by a thread holding none */
    uint32_t ledger_gen;           /* the life the three fields above describe */
    uint64_t acquisitions;         /* atomic, relaxed; counted only while some thread
                                      waits (nwaiting), by exclusive holders (the lock
                                      serialises them); read by the waiters */
    uint32_t nwaiting;             /* atomic: threads whose checked wait on this lock
                                      has lasted at least one slice */
} weft__cknode_t;

typedef struct weft__ckpermit {
    uint32_t tid;
    void *site;
    uint64_t since_ns;
    struct weft__ckthread *thread;
    struct weft__ckpermit *next;
} weft__ckpermit_t;

/* An entry of a thread's held stack. Written by its thread only; read by
 * others (owner lookups) with relaxed atomic loads, so every field they read
 * is accessed atomically. */
typedef struct weft__ckheld {
    weft__cknode_t *n;
    uint32_t gen;
    unsigned flags;
    void *site;
    const void *addr;   /* n->addr, so a release reads only this thread's lines */
    uint64_t sig_below; /* signature of the stack beneath this entry */
} weft__ckheld_t;

/* A context-cache entry: in the held-stack context and the global epoch
 * `key` was computed from, acquiring lock n (life gen) records nothing new.
 * With the epoch in the key, an entry made before a bump never matches. */
typedef struct weft__ckctx {
    uint64_t key; /* 0: empty */
    weft__cknode_t *n;
    uint64_t sig; /* the held signature after pushing n */
    uint32_t gen;
    uint32_t hint; /* the caller's: the preload marks default pthread mutexes */
} weft__ckctx_t;

typedef struct weft__ckcset {
    weft__ckctx_t way[2];
} __attribute__((aligned(64))) weft__ckcset_t;

/* Read on every checked acquisition, written only when a lock's life ends
 * or a wait grows long: kept on a line of its own. */
struct weft__ckhot {
    uint32_t epoch;        /* atomic: bumped when any node stops being alive */
    uint32_t long_waiters; /* atomic: waits counted for starvation (see nwaiting) */
} __attribute__((aligned(64)));
extern struct weft__ckhot weft__ck_hot;

typedef struct weft__ckthread {
    weft__ckcset_t *ctx;                /* the context cache; freed at thread exit */
    uint32_t tid;
    bool busy;                          /* inside the check layer: hooks pass */
    bool pl_streak;                     /* preload: a trylock streak is open */
    unsigned nheld;                     /* atomic; written by this thread only */
    uint64_t sig;                       /* signature of the whole held stack */
    weft__ckheld_t held[WEFT__CK_HELD_MAX];
    weft__cknode_t *pending;            /* node of the acquisition in progress */
    const void *pending_addr;
    weft__cknode_t *waiting_on;         /* atomic: read by other threads */
    uint32_t waiting_gen;
    int deadlock_seen;                  /* consecutive slices a cycle was seen */
    uint64_t wait_acq0;                 /* waiting_on's acquisitions when counting began */
    bool wait_counted;                  /* this wait is in waiting_on's nwaiting */
    uint64_t ecache[WEFT__CK_ECACHE];
    struct {
        void *addr;
        weft__cknode_t *n;
        uint32_t gen;
    } ncache[WEFT__CK_NCACHE];
    struct weft__ckthread *next;        /* all threads; protected by weft__ck.lock */
    bool exited;
} weft__ckthread_t;

struct weft__ckglobal {
    weft__rawlock_t lock;
    weft__cknode_t *buckets[WEFT__CK_BUCKETS];
    weft__ckthread_t *threads;
    unsigned reports;
};
extern struct weft__ckglobal weft__ck;

weft__ckthread_t *weft__ck_self(void);
extern __thread weft__ckthread_t *weft__ck_tls __attribute__((tls_model("initial-exec")));

/* A cheap 64-bit finaliser (xor-shift, multiply, xor-shift). */
static inline uint64_t weft__ck_mix(uint64_t x)
{
    x ^= x >> 32;
    x *= 0xD6E8FEB86659FD93ull;
    x ^= x >> 32;
    return x;
}

/* The held signature after pushing n in mode `flags` onto a stack whose
 * signature is sig. Only the shared/exclusive mode matters for edges. */
static inline uint64_t weft__ck_sig_push(uint64_t sig, const weft__cknode_t *n, unsigned flags)
{
    return weft__ck_mix(sig + (uint64_t)(uintptr_t)n * 0x9E3779B97F4A7C15ull +
                        (flags & WEFT__CK_READ));
}

/* The context-cache key of acquiring addr in mode flags under sig in the
 * given epoch; never 0. One multiply: sig is already well mixed, and the
 * fast path's latency chain runs through this. */
static inline uint64_t weft__ck_ctx_key(uint64_t sig, const void *addr, unsigned flags,
                                        uint32_t epoch)
{
    return (sig ^ ((uint64_t)(uintptr_t)addr * 0xC2B2AE3D27D4EB4Full) ^ ((flags & 7u) << 1) ^
            ((uint64_t)epoch << 8)) |
           1u;
}

static inline weft__ckcset_t *weft__ck_ctx_set(weft__ckthread_t *t, uint64_t key)
{
    return &t->ctx[key >> (64 - WEFT__CK_CSETS_LOG2)];
}

/* Relaxed stores: other threads read the stack only for owner lookups,
 * which are snapshots confirmed over time (see weft__ck_owner). */
static inline void weft__ck_push_at(weft__ckthread_t *t, unsigned k, weft__cknode_t *n,
                                    uint32_t gen, unsigned flags, void *site, const void *addr,
                                    uint64_t sig)
{
    if (k == WEFT__CK_HELD_MAX)
        return; /* deeper nesting is not tracked */
    weft__ckheld_t *h = &t->held[k];
    __atomic_store_n(&h->gen, gen, __ATOMIC_RELAXED);
    __atomic_store_n(&h->flags, flags, __ATOMIC_RELAXED);
    __atomic_store_n(&h->site, site, __ATOMIC_RELAXED);
    __atomic_store_n(&h->n, n, __ATOMIC_RELAXED);
    h->addr = addr;
    h->sig_below = t->sig;
    t->sig = sig;
    __atomic_store_n(&t->nheld, k + 1, __ATOMIC_RELAXED);
}

void weft__ck_count_acquisition(weft__cknode_t *n, unsigned flags);

/*
 * The fast path of an acquisition that did not wait: true when the context
 * cache shows this thread has already recorded everything it implies; the
 * lock is then pushed and nothing else is done. Reads this thread's state
 * and weft__ck_hot only; never calls into libc (errno is preserved).
 */
/* The entry for acquiring addr in mode flags on a held stack of signature
 * sig, under the current epoch; NULL if there is none. */
static inline weft__ckctx_t *weft__ck_ctx_find_sig(weft__ckthread_t *t, uint64_t sig,
                                                   const void *addr, unsigned flags)
{
    /* Acquire: pairs with the release increment in weft__ck_epoch_bump(), so
     * an entry found under the current epoch names no node whose life has
     * ended. */
    uint32_t epoch = __atomic_load_n(&weft__ck_hot.epoch, __ATOMIC_ACQUIRE);
    uint64_t key = weft__ck_ctx_key(sig, addr, flags, epoch);
    weft__ckcset_t *set = weft__ck_ctx_set(t, key);
    return set->way[0].key == key   ? &set->way[0]
           : set->way[1].key == key ? &set->way[1]
                                    : NULL;
}

static inline weft__ckctx_t *weft__ck_ctx_find(weft__ckthread_t *t, const void *addr,
                                               unsigned flags)
{
    return weft__ck_ctx_find_sig(t, t->sig, addr, flags);
}

/* Push the lock an entry of the context cache describes, counting the
 * acquisition while some wait on it has grown long. */
static inline void weft__ck_push_ctx(weft__ckthread_t *t, const weft__ckctx_t *e, const void *addr,
                                     unsigned flags, void *site)
{
    weft__ck_push_at(t, t->nheld, e->n, e->gen, flags, site, addr, e->sig);
    if (__builtin_expect(__atomic_load_n(&weft__ck_hot.long_waiters, __ATOMIC_RELAXED) != 0, 0))
        weft__ck_count_acquisition(e->n, flags);
}

static inline bool weft__ck_acquired_fast(weft__ckthread_t *t, const void *addr, unsigned flags,
                                          void *site)
{
    const weft__ckctx_t *e = weft__ck_ctx_find(t, addr, flags);
    if (e == NULL)
        return false;
    weft__ck_push_ctx(t, e, addr, flags, site);
    return true;
}

/* The fast path of a release: the lock on top of the held stack (the usual
 * LIFO order). */
static inline bool weft__ck_on_top(const weft__ckthread_t *t, const void *addr)
{
    unsigned k = t->nheld;
    return k > 0 && t->held[k - 1].addr == addr;
}

static inline void weft__ck_pop_top(weft__ckthread_t *t)
{
    unsigned k = t->nheld;
    t->sig = t->held[k - 1].sig_below;
    __atomic_store_n(&t->nheld, k - 1, __ATOMIC_RELAXED);
}

static inline bool weft__ck_release_fast(weft__ckthread_t *t, const void *addr)
{
    if (!weft__ck_on_top(t, addr))
        return false;
    weft__ck_pop_top(t);
    return true;
}

weft__cknode_t *weft__ck_node(weft__ckthread_t *t, const weft__ck_lock_t *l, void *site);

/* The node cache probe, inlined into the hot paths. Nodes are never freed
 * and a node's address never changes (a dead node is only reused for the
 * same address), so a stale entry is safe to read; life and generation
 * tell whether it still describes this lock. */
static inline weft__cknode_t *weft__ck_node_cached(const weft__ckthread_t *t, const void *addr)
{
    size_t slot = ((uintptr_t)addr >> 4) & (WEFT__CK_NCACHE - 1);
    weft__cknode_t *n = t->ncache[slot].n;
    if (n != NULL && t->ncache[slot].addr == addr &&
        /* Acquire: pairs with the release store of alive in lock_destroy. */
        __atomic_load_n(&n->alive, __ATOMIC_ACQUIRE) &&
        __atomic_load_n(&n->gen, __ATOMIC_RELAXED) == t->ncache[slot].gen)
        return n;
    return NULL;
}

/* A well-mixed 64-bit key for the edge (a, b) in their current lives;
 * never 0 (0 marks an empty edge-cache slot). */
static inline uint64_t weft__ck_edge_key(const weft__cknode_t *a, const weft__cknode_t *b)
{
    uint64_t k = (uint64_t)(uintptr_t)a ^ ((uint64_t)(uintptr_t)b * 0x9E3779B97F4A7C15ull);
    k ^= ((uint64_t)a->gen << 48) ^ ((uint64_t)b->gen << 32);
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDull;
    k ^= k >> 29;
    return k | 1;
}

static inline size_t weft__ck_eslot(uint64_t key)
{
    return (size_t)(key >> 20) & (WEFT__CK_ECACHE - 1);
}
/* The thread holding n exclusively (from the threads' held stacks), with
 * where it acquired it; NULL if none. Racy by nature: a snapshot. */
weft__ckthread_t *weft__ck_owner(weft__cknode_t *n, void **site);
/* Who keeps a waiter of n waiting, from the held stacks: the exclusive
 * holder alone if there is one, else every shared holder (each thread
 * once, at most max). Returns how many were stored. A snapshot. */
int weft__ck_holders(weft__cknode_t *n, weft__ckthread_t **out, int max);
/* How thread o holds n: its held-stack flags, or -1 if it does not; *site
 * gets where it acquired n. A snapshot. */
int weft__ck_held_by(const weft__ckthread_t *o, const weft__cknode_t *n, void **site);
const char *weft__ck_label(const weft__cknode_t *n, char *buf, size_t len);

/* graph.c */
void weft__ck_add_edges(weft__ckthread_t *t, weft__cknode_t *to, unsigned flags, void *site);
int weft__ck_waitfor_cycle(weft__ckthread_t *t, weft__cknode_t *n, weft__cknode_t **cyc,
                           weft__ckthread_t **who, int max);

/* report.c */
typedef struct weft__ckbuf {
    char *text;
    size_t tlen, tcap;
    char *json;
    size_t jlen, jcap;
} weft__ckbuf_t;

bool weft__ck_report_once(uint64_t key);
void weft__ck_printf(weft__ckbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void weft__ck_jprintf(weft__ckbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void weft__ck_jstr(weft__ckbuf_t *b, const char *s);
void weft__ck_stack(weft__ckbuf_t *b, void *const *bt, int n, const char *indent);
void weft__ck_emit(weft__ckbuf_t *b, const char *kind, const char *title);

/* reports.c: the reports themselves */
void weft__ck_report_inversion(weft__ckthread_t *t, weft__ckedge_t **cyc, int n,
                               weft__cknode_t **nodes);
void weft__ck_report_deadlock(weft__ckthread_t *t, weft__cknode_t **cyc, weft__ckthread_t **who,
                              int len);
/* The same, for a wait-for cycle found by t's walk; `flags` describe t's
 * own wait (WEFT__CK_READ for a read lock). */
void weft__ck_report_waitfor(weft__ckthread_t *t, weft__cknode_t **cyc, weft__ckthread_t **who,
                             int len, unsigned flags);
void weft__ck_report_bad_unlock(weft__ckthread_t *t, weft__cknode_t *n, void *site);
void weft__ck_report_destroy_held(weft__ckthread_t *t, const weft__ck_lock_t *l);

/* ledger.c: semaphore permits */
void weft__ck_permits_at_exit(weft__ckthread_t *t);
/* The threads holding permits of semaphore n (each once, at most max), or
 * -1 when the ledger cannot name them all: the semaphore has been used for
 * signalling, a holder has exited, or there are more than max. */
int weft__ck_permit_holders(weft__cknode_t *n, weft__ckthread_t **out, int max);
/* Where thread o took its newest permit of n (NULL if it holds none). */
void *weft__ck_permit_site(weft__cknode_t *n, const weft__ckthread_t *o);
void weft__ck_report_starvation(weft__ckthread_t *t, weft__cknode_t *n, uint64_t waited_ns,
                                uint64_t others);

#endif
