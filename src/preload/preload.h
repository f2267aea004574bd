/*
 * Shared by the files of the preload library: the real C library functions
 * and the helpers every interposer uses.
 */
#ifndef WEFT_PRELOAD_H
#define WEFT_PRELOAD_H

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "check/check_internal.h"
#include "internal/instrument.h"

/* The interposed functions are the only symbols the library exports. */
#define WEFT_PRELOAD_API __attribute__((visibility("default")))

#define WEFT__PRELOAD_FUNCTIONS(X)                                                          \
    X(int, pthread_mutex_lock, (pthread_mutex_t *))                                         \
    X(int, pthread_mutex_trylock, (pthread_mutex_t *))                                      \
    X(int, pthread_mutex_timedlock, (pthread_mutex_t *, const struct timespec *))           \
    X(int, pthread_mutex_clocklock, (pthread_mutex_t *, clockid_t, const struct timespec *)) \
    X(int, pthread_mutex_unlock, (pthread_mutex_t *))                                       \
    X(int, pthread_mutex_init, (pthread_mutex_t *, const pthread_mutexattr_t *))            \
    X(int, pthread_mutex_destroy, (pthread_mutex_t *))                                      \
    X(int, pthread_rwlock_rdlock, (pthread_rwlock_t *))                                     \
    X(int, pthread_rwlock_wrlock, (pthread_rwlock_t *))                                     \
    X(int, pthread_rwlock_tryrdlock, (pthread_rwlock_t *))                                  \
    X(int, pthread_rwlock_trywrlock, (pthread_rwlock_t *))                                  \
    X(int, pthread_rwlock_timedrdlock, (pthread_rwlock_t *, const struct timespec *))       \
    X(int, pthread_rwlock_timedwrlock, (pthread_rwlock_t *, const struct timespec *))       \
    X(int, pthread_rwlock_clockrdlock, (pthread_rwlock_t *, clockid_t, const struct timespec *)) \
    X(int, pthread_rwlock_clockwrlock, (pthread_rwlock_t *, clockid_t, const struct timespec *)) \
    X(int, pthread_rwlock_unlock, (pthread_rwlock_t *))                                     \
    X(int, pthread_rwlock_init, (pthread_rwlock_t *, const pthread_rwlockattr_t *))         \
    X(int, pthread_rwlock_destroy, (pthread_rwlock_t *))                                    \
    X(int, pthread_cond_wait, (pthread_cond_t *, pthread_mutex_t *))                        \
    X(int, pthread_cond_timedwait, (pthread_cond_t *, pthread_mutex_t *, const struct timespec *)) \
    X(int, pthread_cond_clockwait, (pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *)) \
    X(int, pthread_once, (pthread_once_t *, void (*)(void)))                                \
    X(int, sem_wait, (sem_t *))                                                             \
    X(int, sem_trywait, (sem_t *))                                                          \
    X(int, sem_timedwait, (sem_t *, const struct timespec *))                               \
    X(int, sem_clockwait, (sem_t *, clockid_t, const struct timespec *))                    \
    X(int, sem_post, (sem_t *))                                                             \
    X(int, sem_init, (sem_t *, int, unsigned))                                              \
    X(int, sem_destroy, (sem_t *))

#define WEFT__REAL_DECL(ret, name, params)                                                 \
    typedef ret(*weft__##name##_fn) params;                                                 \
    extern weft__##name##_fn weft__real_##name;
WEFT__PRELOAD_FUNCTIONS(WEFT__REAL_DECL)
#undef WEFT__REAL_DECL

/* Non-zero while the check layer runs on this thread: calls pass through. */
extern __thread int weft__pl_depth __attribute__((tls_model("initial-exec")));

/* Run check-layer code with the preload passing calls through, and with
 * errno as the real call left it. */
#define WEFT__PL_CALL(stmt)                                                                  \
    do {                                                                                     \
        int saved_errno_ = errno;                                                            \
        weft__pl_depth++;                                                                    \
        stmt;                                                                                \
        weft__pl_depth--;                                                                    \
        errno = saved_errno_;                                                                \
    } while (0)

/* Preload-private bits beside the check layer's flags in a held-stack
 * entry (the check layer looks only at its own low bits): the lock is a
 * default-type pthread mutex, so the leaf unlock need not read its type. */
#define WEFT__PL_PDEFAULT (1u << 8)
/* A context-cache hint (weft__ckctx_t.hint): the lock acquired in that
 * context is a default-type pthread mutex. */
#define WEFT__PL_HINT_PDEFAULT 1u

/* The lifecycle hooks every interposed kind shares. */
void weft__pl_lock_new(void *addr, int kind);
void weft__pl_lock_gone(void *addr, int kind, bool held);
void weft__pl_unlocking(void *addr, int kind, void *site);

void weft__pl_init_slow(void);

/* Resolve the real functions on first use (cheap check afterwards). */
static inline void weft__pl_init(void)
{
    /* Acquire: pairs with the release store at the end of resolution. */
    if (__builtin_expect(__atomic_load_n(&weft__real_pthread_mutex_lock, __ATOMIC_ACQUIRE) == NULL,
                         0))
        weft__pl_init_slow();
}

/* Watch this call? Not while the check layer itself runs on this thread
 * (it may use libc locks), and only while checking is on. */
static inline bool weft__pl_watch(void)
{
    return weft__pl_depth == 0 && (__atomic_load_n(&weft__instr, __ATOMIC_RELAXED) & WEFT__INSTR_CHECK) != 0;
}
/* The end of the next slice of a wait, the slice starting at `now_ns`: the
 * slice's own end (in buf), or the caller's deadline `until` (NULL: none)
 * when that comes first, and *last is then true. */
const struct timespec *weft__pl_slice(uint64_t now_ns, const struct timespec *until,
                                      struct timespec *buf, bool *last);
/* A slice of a wait begun at `start_ns` ended without the lock: ask the
 * check layer whether the wait closes a stable wait-for cycle (reported;
 * then stop the program) and return the time now. */
uint64_t weft__pl_slice_ended(const weft__ck_lock_t *cl, unsigned flags, uint64_t start_ns);
struct timespec weft__pl_to_mono(clockid_t clk, const struct timespec *abs);
/* A well-formed absolute deadline (NULL and bad ones go to the real call). */
bool weft__pl_valid_abs(const struct timespec *abs);
void weft__pl_try_result(const void *lock, bool ok, void *site);
extern __thread const void *weft__pl_try_lock __attribute__((tls_model("initial-exec")));
extern __thread uint32_t weft__pl_try_fails __attribute__((tls_model("initial-exec")));

/* A successful blocking acquisition is progress: it ends a trylock streak. */
static inline void weft__pl_progress(void)
{
    if (weft__pl_try_fails != 0) {
        weft__pl_try_lock = NULL;
        weft__pl_try_fails = 0;
        if (weft__ck_tls != NULL)
            weft__ck_tls->pl_streak = false;
    }
}

/* An acquisition that succeeded without waiting: the check layer's fast
 * path inline (no call, errno untouched), the full hook when this context
 * is new to the thread. */
void weft__pl_acquired_slow(void *addr, int kind, unsigned flags, void *site);

/* The same when the context was looked up (found: e) before the attempt. */
static inline __attribute__((always_inline)) void
weft__pl_acquired_as(weft__ckthread_t *t, const weft__ckctx_t *e, void *addr, unsigned flags,
                     void *site)
{
    weft__ck_push_ctx(t, e, addr, flags, site);
    weft__pl_progress();
}

static inline __attribute__((always_inline)) void weft__pl_acquired(void *addr, int kind,
                                                                  unsigned flags, void *site)
{
    weft__ckthread_t *t = weft__ck_tls;
    if (__builtin_expect(t != NULL && !t->busy && weft__ck_acquired_fast(t, addr, flags, site),
                         1))
        weft__pl_progress();
    else
        weft__pl_acquired_slow(addr, kind, flags, site);
}

/*
 * Before the real unlock. When the lock is on top of the held stack (the
 * usual LIFO order) this returns the thread's state, and the caller pops
 * it with weft__ck_pop_top() after the real unlock, so the bookkeeping does
 * not lengthen the critical section (meanwhile another thread may see this
 * one as the owner: owner lookups are snapshots, confirmed over two
 * slices). Otherwise the full hook runs now (out-of-order release,
 * ownership errors) and this returns NULL.
 */
static inline weft__ckthread_t *weft__pl_releasing(void *addr, int kind, void *site)
{
    weft__ckthread_t *t = weft__ck_tls;
    if (__builtin_expect(t != NULL && !t->busy && weft__ck_on_top(t, addr), 1))
        return t;
    weft__pl_unlocking(addr, kind, site);
    return NULL;
}

#endif
