/*
 * weft/lockfree.h - compare-and-swap structures and safe memory reclamation.
 *
 * What is here, and the concurrency contract each name carries:
 *
 *   weft_queue_*        bounded multi-producer multi-consumer FIFO queue
 *                       (any number of threads push and pop at once);
 *                       try variants never block, the others park on a
 *                       futex after a short spin and take a timeout.
 *   weft_ring_*_spsc    bounded single-producer single-consumer ring: one
 *                       thread pushes, one (other) thread pops. The cheapest
 *                       hand-off; using it from more threads is undefined.
 *   weft_stack_*        unbounded LIFO stack (Treiber), safe against ABA and
 *                       against use-after-free of popped nodes; any thread.
 *   weft_hp_*           hazard pointers: the reclamation scheme the stack
 *                       uses, public so that other node-based structures can
 *                       use it too, with a debug mode that reports misuse.
 *   weft_counter_*,     atomic counters and a compare-and-swap loop helper
 *   weft_cas_*          that counts retries (contention made visible).
 *
 * All structures are caller-allocated and embeddable: `_init` may fail
 * (-EINVAL, -ENOMEM) and then owes nothing; after a successful `_init`,
 * `_destroy` is owed once no thread uses the object any more. Fields whose
 * names start with `_` are private.
 *
 * Errors follow weft/base.h: 0 or a negative errno. -EAGAIN means "try
 * again later" (full, empty), -ETIMEDOUT that a blocking call's timeout
 * passed, -EINVAL an invalid argument.
 */
#ifndef WEFT_LOCKFREE_H
#define WEFT_LOCKFREE_H

#include "weft/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes between fields that different threads write, so that they never
 * share a cache line (64 on x86-64; 128 covers adjacent-line prefetch). */
#define WEFT__LF_PAD 64

/* ---- bounded MPMC queue ---------------------------------------------------- */

struct weft__qcell;

/*
 * A bounded FIFO queue of `void *` items for any number of producers and
 * consumers (a sequence-numbered ring after Dmitry Vyukov's design). Each
 * operation is one compare-and-swap on a position counter when uncontended.
 * Items may be any value, NULL included. Order: items pushed by one thread
 * are popped in the order it pushed them.
 */
typedef struct weft_queue {
    char _pad0[WEFT__LF_PAD];
    /* Producers' line: written by every push, read only by pushes. */
    size_t _enq;                 /* private, atomic: next position to fill */
    struct weft__qcell *_pcells; /* private: the cells, read-only after init */
    size_t _pmask;               /* private: capacity * cell size - 1 */
    uint32_t _pspin;             /* private, atomic: blocked pushers' spin budget */
    char _pad1[WEFT__LF_PAD];
    /* Consumers' line: the same for pops. */
    size_t _deq;                 /* private, atomic: next position to drain */
    struct weft__qcell *_ccells; /* private: a copy of _pcells */
    size_t _cmask;               /* private: a copy of _pmask */
    uint32_t _cspin;             /* private, atomic: blocked poppers' spin budget */
    char _pad2[WEFT__LF_PAD];
    /* Read by every operation, written only around sleeping. */
    uint32_t _not_full;  /* private, futex word: epoch << 1 | pushers asleep */
    uint32_t _not_empty; /* private, futex word: epoch << 1 | poppers asleep */
    char _pad3[WEFT__LF_PAD];
} weft_queue_t;

/* Allocates room for `capacity` items, rounded up to a power of two (at
 * least 2). -EINVAL for a NULL queue, capacity 0 or above 2^(bits-2);
 * -ENOMEM. Not thread-safe with respect to the same queue. */
WEFT_API int weft_queue_init(weft_queue_t *q, size_t capacity);
/* Frees the storage; items still queued are dropped (they are the caller's
 * pointers). No thread may use the queue during or after. NULL is ignored. */
WEFT_API void weft_queue_destroy(weft_queue_t *q);
/* 0, or -EAGAIN when full, -EINVAL for NULL. Never blocks. Any thread. */
WEFT_API int weft_queue_trypush(weft_queue_t *q, void *item);
/* 0 and *item set, or -EAGAIN when empty, -EINVAL for NULL. Never blocks.
 * Any thread. */
WEFT_API int weft_queue_trypop(weft_queue_t *q, void **item);
/* Waits while full: spins briefly, then sleeps until a pop makes room or
 * timeout_ns (relative, WEFT_FOREVER, or 0 for one attempt) passes.
 * 0, -ETIMEDOUT, -EINVAL (NULL queue, negative timeout). Any thread. */
WEFT_API int weft_queue_push(weft_queue_t *q, void *item, int64_t timeout_ns);
/* Waits while empty, as weft_queue_push() waits while full. 0 and *item
 * set, -ETIMEDOUT, -EINVAL. Any thread. */
WEFT_API int weft_queue_pop(weft_queue_t *q, void **item, int64_t timeout_ns);
/* The capacity after rounding. Any thread. 0 for NULL. */
WEFT_API size_t weft_queue_capacity(const weft_queue_t *q);
/* Items queued at some instant during the call (a snapshot that may be
 * stale on return; includes items still being written or read). Any thread. */
WEFT_API size_t weft_queue_size(const weft_queue_t *q);

/* ---- SPSC ring ------------------------------------------------------------- */

/*
 * A bounded FIFO ring for exactly one producer thread and one consumer
 * thread (which may change over time only with a happens-before hand-over,
 * such as a thread join). Push and pop are a load, a store and a release
 * store; each side caches the other's index to touch its cache line only
 * when the ring looks full or empty. Every slot of the capacity is usable.
 */
typedef struct weft_ring {
    void **_slots; /* private: read-only after init */
    size_t _mask;  /* private: capacity - 1 */
    char _pad0[WEFT__LF_PAD];
    size_t _head;      /* private, atomic: written by the producer only */
    size_t _tail_seen; /* private: producer's copy of _tail */
    char _pad1[WEFT__LF_PAD];
    size_t _tail;      /* private, atomic: written by the consumer only */
    size_t _head_seen; /* private: consumer's copy of _head */
    char _pad2[WEFT__LF_PAD];
} weft_ring_t;

/* As weft_queue_init() (capacity rounded up to a power of two, at least 1).
 * Not thread-safe with respect to the same ring. */
WEFT_API int weft_ring_init(weft_ring_t *r, size_t capacity);
/* Frees the storage. No thread may use the ring during or after. */
WEFT_API void weft_ring_destroy(weft_ring_t *r);
/* Producer thread only. 0, -EAGAIN when full, -EINVAL for NULL. */
WEFT_API int weft_ring_push_spsc(weft_ring_t *r, void *item);
/* Consumer thread only. 0, -EAGAIN when empty, -EINVAL for NULL. */
WEFT_API int weft_ring_pop_spsc(weft_ring_t *r, void **item);
/* Producer thread only: pushes up to n items from items[], in order, with
 * one release store. Returns how many were pushed (0 when full or on a NULL
 * argument). */
WEFT_API size_t weft_ring_push_many_spsc(weft_ring_t *r, void *const *items, size_t n);
/* Consumer thread only: pops up to n items into items[]. Returns how many. */
WEFT_API size_t weft_ring_pop_many_spsc(weft_ring_t *r, void **items, size_t n);
/* The capacity after rounding; 0 for NULL. Any thread. */
WEFT_API size_t weft_ring_capacity(const weft_ring_t *r);
/* Items in the ring at some instant during the call. Any thread. */
WEFT_API size_t weft_ring_size(const weft_ring_t *r);

/* ---- hazard pointers --------------------------------------------------------- */

/*
 * Safe memory reclamation with hazard pointers (Maged Michael, 2004).
 *
 * A thread that is about to dereference a shared node first publishes its
 * address in one of its hazard slots (weft_hp_protect()); a node removed
 * from its structure is retired (weft_hp_retire()) instead of freed, and is
 * reclaimed only once no slot of any thread holds it. Each thread owns
 * WEFT_HP_SLOTS slots, allocated on first use and handed to the next new
 * thread when it exits (with its not yet reclaimed nodes).
 *
 * Rules: a node is retired once, after it is unreachable from every shared
 * location; a thread clears its own hazard on a node before retiring it;
 * protected pointers point to objects whose first member is weft_hp_node_t.
 *
 * Debug mode (weft_hp_debug_set(true), or WEFT_HP_DEBUG=1 in the
 * environment): reclaimed nodes are poisoned and kept in quarantine for a
 * while before they are freed, and these are reported (to stderr, counted by
 * weft_hp_debug_reports()):
 *   - retiring a node that the retiring thread still protects;
 *   - retiring a node twice;
 *   - a protected node that was retired while still reachable (found when a
 *     validated weft_hp_protect() returns a node already retired);
 *   - touching a node after reclamation (weft_hp_protect() or
 *     weft_hp_check() on a poisoned node).
 */
#define WEFT_HP_SLOTS 4

typedef struct weft_hp_node {
    struct weft_hp_node *_next;              /* private: retired-list link */
    void (*_reclaim)(struct weft_hp_node *); /* private: set by retire */
    uint32_t _state;                         /* private, atomic: debug state */
    uint32_t _pad;
} weft_hp_node_t;

/* Marks a fresh node live (needed before it is published, for the debug
 * checks). Any thread; the node must not be shared yet. */
WEFT_API void weft_hp_node_init(weft_hp_node_t *node);
/*
 * Loads the pointer at *src, publishes it in the calling thread's hazard
 * slot `slot` and re-reads *src until both agree; returns it (NULL when *src
 * is NULL). The returned node stays allocated until the slot is cleared or
 * reused. *src must be accessed atomically by every thread. Returns NULL and
 * changes nothing for slot >= WEFT_HP_SLOTS or a NULL src, or when the slots
 * cannot be allocated (out of memory). Any thread.
 */
WEFT_API void *weft_hp_protect(unsigned slot, void *const *src);
/* Clears the calling thread's slot (release: reads of the node before it
 * happen-before its reclamation). Any thread; no-op on a bad slot. */
WEFT_API void weft_hp_clear(unsigned slot);
/* Retires an unlinked node; `reclaim` frees it once no hazard holds it,
 * later, on this thread or on one that inherits this thread's slots.
 * 0, -EINVAL (NULL argument), -ENOMEM (the calling thread's slots could not
 * be allocated; the node stays the caller's). Any thread. */
WEFT_API int weft_hp_retire(weft_hp_node_t *node, void (*reclaim)(weft_hp_node_t *node));
/* Reclaims every node the calling thread retired that no hazard holds
 * (in debug mode: poisons it and moves it to the quarantine, which frees
 * its oldest nodes as it fills). Returns how many nodes stay retired
 * because some thread protects them. Any thread. */
WEFT_API size_t weft_hp_drain(void);
/* Debug mode: report if `node` was reclaimed (poisoned). Returns false and
 * reports when it was; true otherwise, and always true when debug mode is
 * off. For assertions before dereferencing a protected node. */
WEFT_API bool weft_hp_check(const weft_hp_node_t *node);
/* Turns debug mode on or off. Switch it before nodes are created: nodes
 * initialised with it off are not checked. */
WEFT_API void weft_hp_debug_set(bool on);
WEFT_API bool weft_hp_debug_enabled(void);
/* Reports made since the start (debug mode). */
WEFT_API uint64_t weft_hp_debug_reports(void);

/* ---- Treiber stack ------------------------------------------------------------ */

struct weft__snode;

/*
 * An unbounded LIFO stack of `void *` items for any number of threads.
 * Each push allocates a node; pop protects the top node with a hazard
 * pointer, so a popped node is never freed (and so its address never
 * reused) while another thread may still read it. That one mechanism
 * removes both ABA (the top cannot be popped and a new node pushed at the
 * same address while a popper holds it) and use-after-free; no
 * double-width compare-and-swap is needed (see docs/lockfree.md).
 */
typedef struct weft_stack {
    struct weft__snode *_top; /* private, atomic */
} weft_stack_t;

/* clang-format off */
#define WEFT_STACK_INIT {NULL}
/* clang-format on */

/* 0 or -EINVAL. */
WEFT_API int weft_stack_init(weft_stack_t *s);
/* Frees the nodes still on the stack (their items are the caller's).
 * No thread may use the stack during or after. NULL is ignored. */
WEFT_API void weft_stack_destroy(weft_stack_t *s);
/* 0, -ENOMEM, -EINVAL. Any thread. */
WEFT_API int weft_stack_push(weft_stack_t *s, void *item);
/* 0 and *item set, -EAGAIN when empty, -ENOMEM (no hazard slots), -EINVAL.
 * Any thread. */
WEFT_API int weft_stack_pop(weft_stack_t *s, void **item);

/* ---- counters and CAS loops ----------------------------------------------------- */

/* A 64-bit atomic counter, padded to its own cache line. */
typedef struct weft_counter {
    int64_t _value; /* private, atomic */
    char _pad[WEFT__LF_PAD - sizeof(int64_t)];
} weft_counter_t;

/* clang-format off */
#define WEFT_COUNTER_INIT {0, {0}}
/* clang-format on */

/* Retry statistics of CAS loops; many threads may share one (relaxed
 * counters). Read the fields with weft_cas_stats_read(). */
typedef struct weft_cas_stats {
    uint64_t _successes; /* private, atomic */
    uint64_t _retries;   /* private, atomic: failed compare-and-swaps */
} weft_cas_stats_t;

/* clang-format off */
#define WEFT_CAS_STATS_INIT {0, 0}
/* clang-format on */

/* The counter functions treat a NULL counter as a fatal programming error.
 * All are safe from any thread. Add returns the new value (one fetch-add). */
WEFT_API int64_t weft_counter_add(weft_counter_t *c, int64_t delta);
WEFT_API int64_t weft_counter_load(const weft_counter_t *c);
WEFT_API void weft_counter_store(weft_counter_t *c, int64_t value);
/* Adds with a compare-and-swap loop instead of fetch-add, counting retries
 * in `stats` (may be NULL): the lab's view of contention. New value. */
WEFT_API int64_t weft_counter_add_cas(weft_counter_t *c, int64_t delta, weft_cas_stats_t *stats);

/* Computes the next value from the current one; called once per attempt,
 * so it must have no side effects. */
typedef uint64_t (*weft_cas_fn)(uint64_t old, void *arg);

/*
 * Atomically replaces *word with fn(old, arg), retrying while other threads
 * change *word between the read and the compare-and-swap. Sequentially
 * consistent. Stores the value replaced in *old_out (may be NULL) and counts
 * the attempts in `stats` (may be NULL). 0 or -EINVAL. Any thread.
 */
WEFT_API int weft_cas_update(uint64_t *word, weft_cas_fn fn, void *arg, uint64_t *old_out,
                             weft_cas_stats_t *stats);
/* Reads the statistics (each field a relaxed load) into the out pointers
 * (either may be NULL); then optionally resets them. */
WEFT_API void weft_cas_stats_read(weft_cas_stats_t *stats, uint64_t *successes, uint64_t *retries,
                                  bool reset);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_LOCKFREE_H */
