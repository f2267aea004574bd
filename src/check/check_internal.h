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
    uint32_t nwaiting;             /* atomic: threads in a checked blocking wait */
} weft__cknode_t;

typedef struct weft__ckpermit {
    uint32_t tid;
    void *site;
    uint64_t since_ns;
    struct weft__ckthread *thread;
    struct weft__ckpermit *next;
} weft__ckpermit_t;

/* An entry of a thread's held stack. Written by its thread only; read by
 * others (owner lookups) with relaxed atomic loads, so every field is
 * accessed atomically. */
typedef struct weft__ckheld {
    weft__cknode_t *n;
    uint32_t gen;
    unsigned flags;
    void *site;
} weft__ckheld_t;

typedef struct weft__ckthread {
    uint32_t tid;
    bool busy;                          /* inside the check layer: hooks pass */
    unsigned nheld;                     /* atomic; written by this thread only */
    weft__ckheld_t held[WEFT__CK_HELD_MAX];
    weft__cknode_t *pending;            /* node of the acquisition in progress */
    const void *pending_addr;
    weft__cknode_t *waiting_on;         /* atomic: read by other threads */
    uint32_t waiting_gen;
    int deadlock_seen;                  /* consecutive slices a cycle was seen */
    uint64_t wait_acq0;                 /* waiting_on's acquisitions when the wait began */
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
