/*
 * The narrow interface through which the sync layer (and the preload
 * library) feeds the check layer. Every call sits behind
 * WEFT__INSTRUMENTED() at the call site and returns at once unless the
 * WEFT__INSTR_CHECK bit is set.
 *
 * A lock is identified by its address. weft__check_lock_new() starts a new
 * life for an address (init): everything learned about an earlier lock at
 * the same address is forgotten, so a freed lock whose memory is reused
 * never produces a false report.
 */
#ifndef WEFT_INTERNAL_CHECK_H
#define WEFT_INTERNAL_CHECK_H

#include <stdbool.h>
#include <stdint.h>

enum weft__lk_kind {
    WEFT__LK_MUTEX,
    WEFT__LK_RWLOCK,
    WEFT__LK_FAIRLOCK,
    WEFT__LK_SEM,
    WEFT__LK_PMUTEX,   /* pthread_mutex_t seen by the preload library */
    WEFT__LK_PRWLOCK,  /* pthread_rwlock_t */
    WEFT__LK_PSEM,     /* sem_t */
};

enum {
    WEFT__CK_READ = 1u << 0,      /* shared acquisition of an rwlock */
    WEFT__CK_TRY = 1u << 1,       /* cannot block: creates no order edge */
    WEFT__CK_RECURSIVE = 1u << 2, /* the lock allows recursion by its owner */
};

/* A lock identity as the hooks describe it. `name` may be NULL: the check
 * layer then names the lock by symbol or by the site that first used it. */
typedef struct weft__ck_lock {
    void *addr;
    const char *name;
    int kind;
} weft__ck_lock_t;

bool weft__check_on(void);
void weft__check_lock_new(const weft__ck_lock_t *l);
void weft__check_lock_destroy(const weft__ck_lock_t *l, bool held);
/* Before a blocking acquisition: order edges (may report an inversion). */
void weft__check_acquire_pre(const weft__ck_lock_t *l, unsigned flags, void *site);
/* A blocked acquirer calls this every slice it waited. Returns -EDEADLK
 * once the wait is part of a stable wait-for cycle (reported once). */
int weft__check_blocked(const weft__ck_lock_t *l, unsigned flags, uint64_t waited_ns);
/* After the attempt: acquired or not. Clears the waiting state. */
void weft__check_acquire_post(const weft__ck_lock_t *l, unsigned flags, bool acquired,
                              void *site);
/* An acquisition that succeeded at the first attempt (never waited): the
 * edges of acquire_pre and the bookkeeping of acquire_post in one call. */
void weft__check_acquired(const weft__ck_lock_t *l, unsigned flags, void *site);
/* Before a release. Returns -EPERM (and reports) when the caller does not
 * hold the lock but another known thread does. */
int weft__check_release(const weft__ck_lock_t *l, unsigned flags, void *site);
/* A lock the caller holds is being re-locked: report the self-deadlock. */
void weft__check_self_deadlock(const weft__ck_lock_t *l, void *site);

/* After a deadlock report, when the caller cannot return -EDEADLK: exit
 * with status 66 under `weft check`, abort otherwise (never returns unless
 * WEFT_CHECK_ON_DEADLOCK=wait). */
void weft__check_stop_hang(void);

/* Deliver a report composed by another layer (kind, one-line title, the
 * whole text) through the check layer's sinks, counted like the others. */
void weft__check_report_text(const char *kind, const char *title, const char *text);

/* Counting semaphores: the permit ledger. */
void weft__check_sem_acquired(const weft__ck_lock_t *s, void *site);
void weft__check_sem_released(const weft__ck_lock_t *s, void *site);
/* How long an acquire may wait before the ledger is reported:
 * WEFT_CHECK_SEM_WAIT_MS (default 1000 ms). */
uint64_t weft__check_sem_wait_ns(void);
/* A waiter that has waited past the threshold: explain who holds permits. */
void weft__check_sem_waiting(const weft__ck_lock_t *s, uint64_t waited_ns, void *site);
/* Around a blocking semaphore wait: makes the waiter visible to wait-for
 * walks (it then calls weft__check_blocked after each slice). No order
 * edges: a semaphore is not a lock. */
void weft__check_sem_wait_begin(const weft__ck_lock_t *s);
void weft__check_sem_wait_end(const weft__ck_lock_t *s);

/* Livelock: a retry loop (weft_backoff, trylock loops) failing repeatedly. */
void weft__check_retry_failed(const void *key, const char *what, uint32_t failures, void *site);

/* How long a blocked acquirer sleeps between calls to weft__check_blocked. */
#define WEFT__CHECK_SLICE_NS (50u * 1000u * 1000u)

#endif
