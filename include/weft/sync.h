/*
 * weft/sync.h - coordination primitives: mutex, condition variable, counting
 * semaphore, reader-writer lock, fair (FIFO) lock, once, barrier, back-off.
 *
 * Common rules (see docs/sync.md for the full reference):
 *  - Every primitive is embeddable: the struct layout is public so it can
 *    live inside your own structs, but fields whose names start with `_` are
 *    private and must not be touched.
 *  - Every primitive has a static initialiser taking its name, e.g.
 *    WEFT_MUTEX_INIT("queue"), equivalent to the matching _init call. The
 *    name is the lock class in every report, so give locks of one role one
 *    name. The name string must outlive the primitive (a literal is ideal).
 *    A NULL name is allowed and reported as "(unnamed)".
 *  - Functions return 0 or a negative errno. Blocking calls have a timed
 *    variant with a relative `timeout_ns`; WEFT_FOREVER waits without limit;
 *    other negative values give -EINVAL.
 *  - All operations on one primitive may be called concurrently from any
 *    threads, except _init and _destroy, which must not race with any other
 *    use of the same object (the usual lifetime rule).
 *  - The primitives are process-private (futexes without FUTEX_SHARED).
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ mutex */

/*
 * A non-recursive mutual exclusion lock with ownership, built on a futex,
 * with a short adaptive spin before parking. Unfair (a running thread may
 * take the lock before a woken one): see weft_fairlock_t for FIFO order.
 */
typedef struct WEFT_CAPABILITY("mutex") weft_mutex {
    uint32_t _word;    /* private; atomic: 0 free, else owner tid | waiters bit */
    uint32_t _spin;    /* private; atomic, relaxed: adaptive spin estimate */
    const char *_name; /* read-only: the lock class */
    void *_check;      /* private: check-layer state, set lazily */
} weft_mutex_t;

#define WEFT_MUTEX_INIT(name) { 0, 0, (name), NULL }

/* Initialise *m, unlocked. -EINVAL if m is NULL. */
WEFT_API int weft_mutex_init(weft_mutex_t *m, const char *name);
/* Destroy an unlocked mutex. -EBUSY while held (it stays usable), -EINVAL on NULL. */
WEFT_API int weft_mutex_destroy(weft_mutex_t *m);
/*
 * Acquire, waiting as long as it takes. Locking a mutex the caller already
 * holds is a certain deadlock: weft reports it and aborts the process rather
 * than hang (use weft_mutex_timedlock to get -EDEADLK instead).
 */
WEFT_API void weft_mutex_lock(weft_mutex_t *m) WEFT_ACQUIRE(m);
/* Acquire without waiting: 0, or -EBUSY when held (also by the caller), -EINVAL. */
WEFT_API int weft_mutex_trylock(weft_mutex_t *m) WEFT_TRY_ACQUIRE(0, m);
/*
 * Acquire, waiting at most timeout_ns: 0, -ETIMEDOUT, -EDEADLK when the
 * caller already holds m (or, with checking on, when waiting would close a
 * wait-for cycle), -EINVAL for a NULL m or a bad timeout.
 */
WEFT_API int weft_mutex_timedlock(weft_mutex_t *m, int64_t timeout_ns) WEFT_TRY_ACQUIRE(0, m);
/* Release. -EPERM (and nothing changes) if the caller is not the owner; -EINVAL on NULL. */
WEFT_API int weft_mutex_unlock(weft_mutex_t *m) WEFT_RELEASE(m);
/* True if the calling thread holds m. For assert(); false for NULL. */
WEFT_API bool weft_mutex_held(const weft_mutex_t *m);
/*
 * Acquire every mutex in ms[0..n) in one global order (by address), so two
 * threads locking overlapping sets can never wait on each other in a cycle.
 * NULL entries and repeated entries are skipped (each mutex is locked once).
 * The caller must hold none of them.
 */
WEFT_API void weft_mutex_lock_all(weft_mutex_t *const ms[], size_t n);
/* Release every mutex of a weft_mutex_lock_all() set (NULLs and repeats skipped). */
WEFT_API void weft_mutex_unlock_all(weft_mutex_t *const ms[], size_t n);

/* ------------------------------------------------------- condition variable */

typedef struct weft_cond {
    uint32_t _seq;     /* private; atomic: bumped by every signal/broadcast */
    uint32_t _waiters; /* private; atomic: threads inside wait */
    const char *_name; /* read-only */
    void *_check;      /* private */
} weft_cond_t;

#define WEFT_COND_INIT(name) { 0, 0, (name), NULL }

WEFT_API int weft_cond_init(weft_cond_t *c, const char *name);
/* -EBUSY while threads are waiting; -EINVAL on NULL. */
WEFT_API int weft_cond_destroy(weft_cond_t *c);
/*
 * Atomically release m (held by the caller) and wait for a signal, then
 * re-acquire m before returning. Wake-ups may be spurious: always wait in a
 * loop that re-checks the predicate. -EPERM if the caller does not hold m.
 */
WEFT_API int weft_cond_wait(weft_cond_t *c, weft_mutex_t *m) WEFT_REQUIRES(m);
/* As weft_cond_wait, at most timeout_ns: 0 or -ETIMEDOUT (m is re-acquired in both cases). */
WEFT_API int weft_cond_timedwait(weft_cond_t *c, weft_mutex_t *m, int64_t timeout_ns)
    WEFT_REQUIRES(m);
/* Wake at least one waiter, if any. The mutex need not be held. */
WEFT_API int weft_cond_signal(weft_cond_t *c);
/* Wake every waiter. The mutex need not be held. */
WEFT_API int weft_cond_broadcast(weft_cond_t *c);

/* ------------------------------------------------------ counting semaphore */

/* The largest permit count a semaphore can hold. */
#define WEFT_SEM_MAX ((unsigned)INT32_MAX)

/*
 * A counting semaphore: a number of permits, taken one at a time and given
 * back by any thread. Uncontended acquire and release are one atomic
 * operation each, with no system call unless a thread sleeps. Unfair, like
 * weft_mutex_t: a running thread may take a permit before a woken one.
 * Releasing a permit happens-before the acquisition that takes it.
 */
typedef struct weft_sem {
    uint64_t _data;    /* private; atomic: low 32 bits permits, high 32 bits waiters */
    const char *_name; /* read-only */
    void *_check;      /* private */
} weft_sem_t;

/* Static initialiser, equivalent to weft_sem_init(); permits <= WEFT_SEM_MAX. */
#define WEFT_SEM_INIT(permits, name) { (uint64_t)(uint32_t)(permits), (name), NULL }

/*
 * Initialise with `permits` available. 0, or -EINVAL on NULL or permits >
 * WEFT_SEM_MAX. Must not race with any other use of *s.
 */
WEFT_API int weft_sem_init(weft_sem_t *s, unsigned permits, const char *name);
/*
 * Check that *s may be discarded: 0, -EBUSY while threads are waiting in
 * acquire (it stays usable), -EINVAL on NULL. Must not race with other
 * uses of *s, apart from the waiters it reports.
 */
WEFT_API int weft_sem_destroy(weft_sem_t *s);
/*
 * Take one permit, waiting as long as it takes. A NULL s is a programming
 * error: weft reports it and aborts. With checking on, a wait that can never
 * end (every permit held by threads blocked on the caller) is reported and
 * the process stopped rather than left hanging. Thread-safe.
 */
WEFT_API void weft_sem_acquire(weft_sem_t *s);
/* Take one permit if one is available, never waiting: 0, -EAGAIN, or
 * -EINVAL on NULL. Thread-safe. */
WEFT_API int weft_sem_tryacquire(weft_sem_t *s);
/*
 * Take one permit, waiting at most timeout_ns (0: try once; WEFT_FOREVER:
 * no limit): 0, -ETIMEDOUT, -EDEADLK (with checking on) when every permit
 * is held by threads blocked in a wait-for cycle through the caller, or
 * -EINVAL for a NULL s or a negative timeout other than WEFT_FOREVER. A waiter that times out takes nothing and never
 * swallows a release meant for another waiter. Thread-safe.
 */
WEFT_API int weft_sem_timedacquire(weft_sem_t *s, int64_t timeout_ns);
/*
 * Return one permit, waking a waiter if there is one. Any thread may
 * release (a semaphore has no owner). 0, -EOVERFLOW (nothing changes) if
 * the count is already WEFT_SEM_MAX, -EINVAL on NULL. Thread-safe.
 */
WEFT_API int weft_sem_release(weft_sem_t *s);
/* Permits available now (a snapshot: may change at once). 0 for NULL. Thread-safe. */
WEFT_API unsigned weft_sem_available(const weft_sem_t *s);

/* ----------------------------------------------------- reader-writer lock */

/*
 * Many readers or one writer. Writer-preferring: once a writer waits, new
 * readers wait behind it, so a stream of readers cannot starve writers; a
 * writer that gives up (timed lock) lets in the readers it held back.
 * Consequently a thread must not take a read lock it already holds while a
 * writer may be waiting (recursive read locking can deadlock). Uncontended
 * lock and unlock are one atomic read-modify-write, with no system call
 * unless a thread sleeps.
 *
 * Every function except _init and _destroy may be called concurrently from
 * any threads. A write hold belongs to the thread that took it; read holds
 * are counted, not tracked per thread.
 */
typedef struct WEFT_CAPABILITY("rwlock") weft_rwlock {
    uint64_t _state;    /* private; atomic: readers, writer bit, waiting writers */
    uint32_t _rseq;     /* private; atomic: futex readers sleep on */
    uint32_t _wseq;     /* private; atomic: futex writers sleep on */
    uint32_t _owner;    /* private; atomic: tid of the writer, 0 if none */
    uint32_t _rwaiting; /* private; atomic: readers inside a blocking rdlock */
    const char *_name;  /* read-only */
    void *_check;       /* private */
} weft_rwlock_t;

/* Static initialiser, equivalent to weft_rwlock_init(). */
#define WEFT_RWLOCK_INIT(name) { 0, 0, 0, 0, 0, (name), NULL }

/* Initialise *rw, unlocked. 0, or -EINVAL on NULL. Must not race with other uses. */
WEFT_API int weft_rwlock_init(weft_rwlock_t *rw, const char *name);
/* 0, -EBUSY while held or waited on (it stays usable), -EINVAL on NULL. */
WEFT_API int weft_rwlock_destroy(weft_rwlock_t *rw);
/*
 * Take a read (shared) hold, waiting as long as it takes. Read-locking a
 * lock the caller holds for writing is a certain deadlock, and so is a NULL
 * rw: weft reports either and aborts (weft_rwlock_timedrdlock returns
 * -EDEADLK instead).
 */
WEFT_API void weft_rwlock_rdlock(weft_rwlock_t *rw) WEFT_ACQUIRE_SHARED(rw);
/*
 * Take the write (exclusive) hold, waiting as long as it takes. Aborts with
 * a report if the caller already holds the write lock (certain deadlock) or
 * rw is NULL; use weft_rwlock_timedwrlock to get -EDEADLK instead.
 */
WEFT_API void weft_rwlock_wrlock(weft_rwlock_t *rw) WEFT_ACQUIRE(rw);
/* Read hold without waiting: 0, -EBUSY (write-held, or a writer waits), -EINVAL. */
WEFT_API int weft_rwlock_tryrdlock(weft_rwlock_t *rw) WEFT_TRY_ACQUIRE_SHARED(0, rw);
/* Write hold without waiting: 0, -EBUSY (held by anyone, the caller too), -EINVAL. */
WEFT_API int weft_rwlock_trywrlock(weft_rwlock_t *rw) WEFT_TRY_ACQUIRE(0, rw);
/*
 * Read hold, waiting at most timeout_ns: 0, -ETIMEDOUT, -EDEADLK if the
 * caller holds the write lock (or, with checking on, when waiting would
 * close a wait-for cycle, such as a second read hold behind a waiting
 * writer), -EINVAL for a NULL rw or a bad timeout.
 */
WEFT_API int weft_rwlock_timedrdlock(weft_rwlock_t *rw, int64_t timeout_ns)
    WEFT_TRY_ACQUIRE_SHARED(0, rw);
/*
 * Write hold, waiting at most timeout_ns: 0, -ETIMEDOUT, -EDEADLK if the
 * caller already holds the write lock (or, with checking on, when waiting
 * would close a wait-for cycle), -EINVAL for a NULL rw or a bad
 * timeout. While it waits, new readers wait too; when it gives up, they go.
 */
WEFT_API int weft_rwlock_timedwrlock(weft_rwlock_t *rw, int64_t timeout_ns)
    WEFT_TRY_ACQUIRE(0, rw);
/*
 * Release the caller's write hold, or else one read hold. 0, -EPERM
 * (nothing changes) if the lock is write-held by another thread or not held
 * at all, -EINVAL on NULL. A read unlock by a thread that holds no read
 * lock, while others do, cannot be detected and releases one of theirs.
 */
WEFT_API int weft_rwlock_unlock(weft_rwlock_t *rw) WEFT_RELEASE_GENERIC(rw);

/* --------------------------------------------------------- fair (FIFO) lock */

struct weft__fair_waiter;

/*
 * A mutual exclusion lock that grants the lock in arrival order: on unlock
 * the lock is handed directly to the longest waiter, so no thread can be
 * starved. Slower than weft_mutex_t under contention (every hand-off wakes a
 * sleeping thread); use it where fairness matters more than throughput.
 */
typedef struct WEFT_CAPABILITY("mutex") weft_fairlock {
    uint32_t _state;                 /* private; atomic: owner tid | queued bit */
    uint32_t _qlock;                 /* private; atomic: ticket lock guarding the queue */
    struct weft__fair_waiter *_head; /* private; protected by _qlock */
    struct weft__fair_waiter *_tail; /* private; protected by _qlock */
    const char *_name;               /* read-only */
    void *_check;                    /* private */
} weft_fairlock_t;

#define WEFT_FAIRLOCK_INIT(name) { 0, 0, NULL, NULL, (name), NULL }

/* Initialise *l, unlocked, with an empty queue. -EINVAL if l is NULL. */
WEFT_API int weft_fairlock_init(weft_fairlock_t *l, const char *name);
/* -EBUSY while held or waited on (it stays usable); -EINVAL on NULL. */
WEFT_API int weft_fairlock_destroy(weft_fairlock_t *l);
/*
 * Acquire, queueing behind every thread that is already waiting. Locking a
 * fair lock the caller already holds is a certain deadlock: weft reports it
 * and aborts the process (weft_fairlock_timedlock returns -EDEADLK instead).
 */
WEFT_API void weft_fairlock_lock(weft_fairlock_t *l) WEFT_ACQUIRE(l);
/*
 * Acquire without waiting: 0, or -EBUSY when held (also by the caller) or
 * when others are queued (a trylock never barges past waiters); -EINVAL.
 */
WEFT_API int weft_fairlock_trylock(weft_fairlock_t *l) WEFT_TRY_ACQUIRE(0, l);
/*
 * Acquire in arrival order, waiting at most timeout_ns: 0, -ETIMEDOUT (the
 * caller has left the queue and the lock works on for the others), -EDEADLK
 * if the caller already holds l (or, with checking on, when waiting would
 * close a wait-for cycle; the caller has then left the queue), -EINVAL
 * for a NULL l or a bad timeout.
 */
WEFT_API int weft_fairlock_timedlock(weft_fairlock_t *l, int64_t timeout_ns)
    WEFT_TRY_ACQUIRE(0, l);
/*
 * Release; if threads are queued, the longest waiter becomes the owner at
 * once. -EPERM (and nothing changes) if the caller is not the owner; -EINVAL.
 */
WEFT_API int weft_fairlock_unlock(weft_fairlock_t *l) WEFT_RELEASE(l);
/* True if the calling thread holds l. For assert(); false for NULL. */
WEFT_API bool weft_fairlock_held(const weft_fairlock_t *l);

/* -------------------------------------------------------------------- once */

typedef struct weft_once {
    uint32_t _state; /* private; atomic: 0 new, running (tid | flags), done */
} weft_once_t;

#define WEFT_ONCE_INIT { 0 }

/*
 * Run fn(arg) exactly once across all threads calling with the same `o`.
 * Callers that arrive while it runs wait for it; when weft_once returns 0,
 * every write fn made is visible to the caller. A call from inside fn on the
 * same once returns -EDEADLK instead of hanging. If fn returns non-zero,
 * that value is returned, the once stays un-run, and the next call (or one
 * of the waiting callers) tries again. -EINVAL for a NULL o or fn.
 */
WEFT_API int weft_once(weft_once_t *o, int (*fn)(void *), void *arg);
/*
 * True once fn has completed successfully; a caller that sees true also
 * sees fn's writes. False for NULL. Never blocks.
 */
WEFT_API bool weft_once_done(const weft_once_t *o);

/* ----------------------------------------------------------------- barrier */

typedef struct weft_barrier {
    uint32_t _count;   /* read-only: parties per cycle */
    uint32_t _arrived; /* private; atomic: sense bit | arrivals this cycle */
    uint32_t _gen;     /* private; atomic: futex bumped by the last arrival */
    uint32_t _inside;  /* private; atomic: threads inside weft_barrier_wait */
    const char *_name; /* read-only */
} weft_barrier_t;

/* The value weft_barrier_wait() returns in exactly one thread per cycle. */
#define WEFT_BARRIER_SERIAL 1

/* -EINVAL on NULL, count 0 or count above INT32_MAX. */
WEFT_API int weft_barrier_init(weft_barrier_t *b, unsigned count, const char *name);
/*
 * -EBUSY while threads wait in an unfinished cycle; -EINVAL on NULL. Threads
 * released by a finished cycle may still be leaving weft_barrier_wait():
 * destroy lets them out before it returns 0, so the memory may then be freed.
 */
WEFT_API int weft_barrier_destroy(weft_barrier_t *b);
/*
 * Wait until `count` threads have arrived: WEFT_BARRIER_SERIAL in one, 0 in
 * the others; -EINVAL on NULL. Reusable at once for the next cycle. Exactly
 * `count` threads take part in each cycle: more callers at once than
 * `count` is a usage error. Writes
 * made by any party before the barrier are visible to every party after it.
 * There is no timed variant: a barrier cannot take back an arrival, so give
 * up on a cycle by other means (for example every party checks a flag).
 */
WEFT_API int weft_barrier_wait(weft_barrier_t *b);

/* ----------------------------------------------------------------- backoff */

/*
 * Exponential back-off with random ("full") jitter for retry loops: each
 * pause waits a random time in [0, current bound], and the bound doubles
 * after every pause up to a cap. Short pauses spin with the CPU's pause
 * instruction; long ones yield the CPU. A weft_backoff_t belongs to one
 * thread (it is not shared), so its functions need no locking.
 */
typedef struct weft_backoff {
    uint64_t _rng;      /* private: xorshift state */
    uint32_t _bound;    /* private: current upper bound, in pause units */
    uint32_t _min;      /* private: first bound */
    uint32_t _max;      /* private: cap */
    uint32_t _failures; /* private: pauses since the last reset */
    uint32_t _last;     /* private: length of the last pause, in pause units */
    uint64_t _total;    /* private: pauses since init */
} weft_backoff_t;

/*
 * Start with the default bounds (4 .. 65536 pause units). seed 0 picks one
 * from the clock, the thread and the address. Does nothing for a NULL b.
 */
WEFT_API void weft_backoff_init(weft_backoff_t *b, uint64_t seed);
/* Change the bounds (min >= 1, max >= min): 0 or -EINVAL (also for NULL). Resets. */
WEFT_API int weft_backoff_set_limits(weft_backoff_t *b, uint32_t min, uint32_t max);
/*
 * Pause for a random number of pause units in [0, bound], then double the
 * bound (up to the cap). Does nothing for a NULL b.
 */
WEFT_API void weft_backoff_pause(weft_backoff_t *b);
/* After progress: return the bound to its minimum. Does nothing for a NULL b. */
WEFT_API void weft_backoff_reset(weft_backoff_t *b);
/* Pauses since the last reset (consecutive failures); 0 for NULL. */
WEFT_API uint32_t weft_backoff_failures(const weft_backoff_t *b);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SYNC_H */
