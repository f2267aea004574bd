/*
 * preload_mutex.c - interposers for pthread mutexes, condition variables
 * and pthread_once. See preload.c for what the preload library promises.
 */
#include <errno.h>

#include "internal/base.h"
#include "internal/check.h"
#include "preload/preload.h"

static weft__ck_lock_t weft__pm_lock(pthread_mutex_t *m)
{
    weft__ck_lock_t cl = {m, NULL, WEFT__LK_PMUTEX};
    return cl;
}

static bool weft__pm_acquired(int r)
{
    return r == 0 || r == EOWNERDEAD;
}

/*
 * glibc's own trylock step for a default mutex (__kind 0:
 * PTHREAD_MUTEX_NORMAL's timed variant, process-private, not robust, no
 * elision), inline: compare-and-swap the lock word from 0 to 1, then record
 * the owner and count the user, exactly the state the real unlock undoes.
 * The type is confirmed once the line is ours: memory reused for another
 * type of mutex without init or destroy gets its word back. Returns 0,
 * EBUSY, or -1 when the mutex is not a default one.
 */
static inline int weft__pm_take_default(pthread_mutex_t *m, uint32_t tid)
{
    int unlocked = 0;
    /* Acquire: pairs with the release exchange of the lock word in the
     * unlock (glibc's, or the leaf's below). */
    if (!__atomic_compare_exchange_n(&m->__data.__lock, &unlocked, 1, false, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED))
        return EBUSY;
    if (weft__unlikely(m->__data.__kind != 0)) {
        /* Release: pairs with the next locker's acquire. */
        __atomic_store_n(&m->__data.__lock, 0, __ATOMIC_RELEASE);
        return -1;
    }
    m->__data.__owner = (int)tid;
    m->__data.__nusers++;
    return 0;
}

/* The first attempt: inline for a default mutex, the real function for
 * every other type. The type is read first: the compare-and-swap must not
 * touch another type's lock word (see the leaf for the hinted order). */
static inline int weft__pm_trylock(pthread_mutex_t *m)
{
    int r = m->__data.__kind == 0 ? weft__pm_take_default(m, weft__tid()) : -1;
    return r >= 0 ? r : weft__real_pthread_mutex_trylock(m);
}

/*
 * Wait for a mutex the first attempt did not get, in slices of the real
 * clocklock, asking the check layer after each whether this wait is part
 * of a deadlock. `until` (CLOCK_MONOTONIC) is the caller's deadline or NULL.
 */
static int weft__pm_wait(pthread_mutex_t *m, const weft__ck_lock_t *cl,
                         const struct timespec *until)
{
    uint64_t start = weft__now_ns(), now = start;
    for (;;) {
        struct timespec buf;
        bool last;
        const struct timespec *end = weft__pl_slice(now, until, &buf, &last);
        int r = weft__real_pthread_mutex_clocklock(m, CLOCK_MONOTONIC, end);
        if (r != ETIMEDOUT || last)
            return r;
        now = weft__pl_slice_ended(cl, 0, start);
    }
}

/* Re-locking a non-recursive mutex one holds hangs forever (the default
 * type) or fails with EDEADLK (error-checking): report the first. */
static bool weft__pm_self_deadlock(pthread_mutex_t *m, const weft__ck_lock_t *cl, void *site)
{
    int type = m->__data.__kind & 3;
    if (type == PTHREAD_MUTEX_RECURSIVE || type == PTHREAD_MUTEX_ERRORCHECK)
        return false;
    if (m->__data.__owner != (int)weft__tid())
        return false;
    WEFT__PL_CALL(weft__check_self_deadlock(cl, site));
    weft__check_stop_hang();
    return true;
}

/* The first attempt (a real trylock) returned r and did not get the lock:
 * report a self-deadlock, or wait in slices. */
static WEFT__COLD int weft__pm_lock_wait(pthread_mutex_t *m, int r, const struct timespec *until,
                                        void *site)
{
    weft__ck_lock_t cl = weft__pm_lock(m);
    if (r != EBUSY)
        return r;
    if (weft__pm_self_deadlock(m, &cl, site))
        return weft__real_pthread_mutex_lock(m);
    WEFT__PL_CALL(weft__check_acquire_pre(&cl, 0, site));
    r = weft__pm_wait(m, &cl, until);
    WEFT__PL_CALL(weft__check_acquire_post(&cl, 0, weft__pm_acquired(r), site));
    if (weft__pm_acquired(r))
        weft__pl_progress();
    return r;
}

/* Try first: an acquisition that does not wait takes the inline fast
 * path; only one that must wait goes through the sliced wait. A context
 * whose lock turns out to be a default mutex is marked in the cache, so the
 * leaf lock can attempt it without reading its type first. */
static inline __attribute__((always_inline)) int
weft__pm_lock_until(pthread_mutex_t *m, const struct timespec *until, void *site)
{
    /* The context lookup comes before the attempt, so that only the push
     * is inside the critical section. The entry is copied: it is this
     * thread's, but a signal handler that locks could replace it. */
    weft__ckthread_t *t = weft__ck_tls;
    bool quiet = t != NULL && !t->busy;
    const weft__ckctx_t *e = quiet ? weft__ck_ctx_find(t, m, 0) : NULL;
    uint64_t sig = quiet ? t->sig : 0;
    weft__ckctx_t ec;
    if (e != NULL)
        ec = *e;
    /* A hinted default mutex is tried with the compare-and-swap first, as
     * in the leaf; its type is confirmed once the line is ours. */
    int r = e != NULL && ec.hint == WEFT__PL_HINT_PDEFAULT ? weft__pm_take_default(m, weft__tid())
                                                            : -1;
    if (r < 0)
        r = weft__pm_trylock(m);
    if (weft__likely(weft__pm_acquired(r))) {
        if (weft__likely(e != NULL))
            weft__pl_acquired_as(t, &ec, m, 0, site);
        else
            weft__pl_acquired_slow(m, WEFT__LK_PMUTEX, 0, site);
        if (quiet && m->__data.__kind == 0) {
            weft__ckctx_t *h = weft__ck_ctx_find_sig(t, sig, m, 0);
            if (h != NULL)
                h->hint = WEFT__PL_HINT_PDEFAULT;
        }
        return r;
    }
    return weft__pm_lock_wait(m, r, until, site);
}

/* The leaf found the mutex held. */
static __attribute__((noinline)) int weft__pm_lock_busy(pthread_mutex_t *m, void *site)
{
    weft__pl_init();
    if (!weft__pl_watch())
        return weft__real_pthread_mutex_lock(m);
    return weft__pm_lock_wait(m, EBUSY, NULL, site);
}

/* Every lock the leaf below does not finish. */
static __attribute__((noinline)) int weft__pm_lock_full(pthread_mutex_t *m, void *site)
{
    weft__pl_init();
    if (!weft__pl_watch())
        return weft__real_pthread_mutex_lock(m);
    return weft__pm_lock_until(m, NULL, site);
}

/* This thread, which has check-layer state t, is not inside the check
 * layer. Checking is on: the preload's state is made only by its hooks,
 * which run only while checking is on, and it cannot be switched off. */
static inline bool weft__pl_quiet(const weft__ckthread_t *t)
{
    return !t->busy && weft__pl_depth == 0;
}

/*
 * The common case as a leaf function: a default mutex (see
 * weft__pm_trylock), free, taken in a held-lock context this thread has
 * seen before. Everything it needs is checked first; anything else goes to
 * the full path, which checks again.
 */
WEFT_PRELOAD_API int pthread_mutex_lock(pthread_mutex_t *m)
{
    void *site = __builtin_return_address(0);
    weft__ckthread_t *t = weft__ck_tls;
    if (weft__likely(t != NULL && weft__pl_quiet(t) && !t->pl_streak &&
                     __atomic_load_n(&weft__ck_hot.long_waiters, __ATOMIC_RELAXED) == 0)) {
        /* Known context, known default mutex. All the bookkeeping is done
         * before the attempt (and undone if it fails), so the critical
         * section holds only glibc's own two stores; and the
         * compare-and-swap is the first touch of the mutex's line (no read
         * before it, which would cost a second transfer of a contended
         * line). Meanwhile another thread may see this one in the held
         * stack a moment early: owner lookups are snapshots, confirmed
         * over two slices. */
        const weft__ckctx_t *e = weft__ck_ctx_find(t, m, 0);
        unsigned k = t->nheld;
        if (weft__likely(e != NULL && e->hint == WEFT__PL_HINT_PDEFAULT &&
                         k < WEFT__CK_HELD_MAX)) {
            uint64_t below = t->sig;
            weft__ck_push_at(t, k, e->n, e->gen, WEFT__PL_PDEFAULT, site, m, e->sig);
            int r = weft__pm_take_default(m, t->tid);
            if (weft__likely(r == 0))
                return 0;
            t->sig = below;
            __atomic_store_n(&t->nheld, k, __ATOMIC_RELAXED);
            /* Busy: straight to the checked wait, whose first step is
             * glibc's own (one more attempt, then sleep), as the real lock
             * would do; no extra attempt here. Not a default mutex after
             * all (memory reused without init or destroy, which would
             * have ended the context): the full path. */
            return r == EBUSY ? weft__pm_lock_busy(m, site) : weft__pm_lock_full(m, site);
        }
    }
    return weft__pm_lock_full(m, site);
}

WEFT_PRELOAD_API int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clk,
                                             const struct timespec *abs)
{
    weft__pl_init();
    if (!weft__pl_watch() || !weft__pl_valid_abs(abs) ||
        (clk != CLOCK_MONOTONIC && clk != CLOCK_REALTIME))
        return weft__real_pthread_mutex_clocklock(m, clk, abs);
    struct timespec until = weft__pl_to_mono(clk, abs);
    return weft__pm_lock_until(m, &until, __builtin_return_address(0));
}

WEFT_PRELOAD_API int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abs)
{
    weft__pl_init();
    if (!weft__pl_watch() || !weft__pl_valid_abs(abs))
        return weft__real_pthread_mutex_timedlock(m, abs);
    struct timespec until = weft__pl_to_mono(CLOCK_REALTIME, abs);
    return weft__pm_lock_until(m, &until, __builtin_return_address(0));
}

WEFT_PRELOAD_API int pthread_mutex_trylock(pthread_mutex_t *m)
{
    weft__pl_init();
    int r = weft__real_pthread_mutex_trylock(m);
    if (!weft__pl_watch())
        return r;
    void *site = __builtin_return_address(0);
    if (weft__pm_acquired(r))
        weft__pl_acquired(m, WEFT__LK_PMUTEX, WEFT__CK_TRY, site);
    WEFT__PL_CALL(weft__pl_try_result(m, weft__pm_acquired(r), site));
    return r;
}

/* Every unlock the leaf below does not finish. */
static __attribute__((noinline)) int weft__pm_unlock_full(pthread_mutex_t *m, void *site)
{
    weft__pl_init();
    if (!weft__pl_watch())
        return weft__real_pthread_mutex_unlock(m);
    weft__ckthread_t *t = weft__pl_releasing(m, WEFT__LK_PMUTEX, site);
    int r = weft__real_pthread_mutex_unlock(m);
    if (t != NULL)
        weft__ck_pop_top(t);
    return r;
}

/* Waking a waiter, as glibc's unlock does when the lock word said so. */
static __attribute__((noinline)) int weft__pm_wake(pthread_mutex_t *m)
{
    int saved_errno = errno;
    (void)weft__futex_wake((uint32_t *)&m->__data.__lock, 1);
    errno = saved_errno;
    return 0;
}

/*
 * The common release as a leaf: a default mutex on top of this thread's
 * held stack. glibc's own unlock steps for that type, inline: clear the
 * owner, count the user out, exchange the lock word with 0 and, if it said
 * that someone waits (2), wake one waiter, process-private. Anything else
 * goes to the full path (real unlock, ownership checks).
 */
WEFT_PRELOAD_API int pthread_mutex_unlock(pthread_mutex_t *m)
{
    weft__ckthread_t *t = weft__ck_tls;
    if (weft__likely(t != NULL && weft__pl_quiet(t) && weft__ck_on_top(t, m) &&
                     ((t->held[t->nheld - 1].flags & WEFT__PL_PDEFAULT) ||
                      m->__data.__kind == 0))) {
        m->__data.__owner = 0;
        m->__data.__nusers--;
        /* Release: pairs with the acquire compare-and-swap of the next
         * locker (glibc's or the leaf's). */
        int old = __atomic_exchange_n(&m->__data.__lock, 0, __ATOMIC_RELEASE);
        weft__ck_pop_top(t);
        if (weft__unlikely(old > 1))
            return weft__pm_wake(m);
        return 0;
    }
    return weft__pm_unlock_full(m, __builtin_return_address(0));
}

WEFT_PRELOAD_API int pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a)
{
    weft__pl_init();
    int r = weft__real_pthread_mutex_init(m, a);
    if (r == 0 && weft__pl_watch())
        weft__pl_lock_new(m, WEFT__LK_PMUTEX);
    return r;
}

WEFT_PRELOAD_API int pthread_mutex_destroy(pthread_mutex_t *m)
{
    weft__pl_init();
    if (weft__pl_watch())
        weft__pl_lock_gone(m, WEFT__LK_PMUTEX, m->__data.__lock != 0);
    return weft__real_pthread_mutex_destroy(m);
}

/* ---- condition variables: the mutex is released while waiting ---------- */

static void weft__pc_release(pthread_mutex_t *m, void *site)
{
    weft__pl_unlocking(m, WEFT__LK_PMUTEX, site);
}

static void weft__pc_reacquired(pthread_mutex_t *m, void *site)
{
    weft__ck_lock_t cl = weft__pm_lock(m);
    WEFT__PL_CALL(weft__check_acquire_pre(&cl, 0, site));
    WEFT__PL_CALL(weft__check_acquire_post(&cl, 0, true, site));
}

WEFT_PRELOAD_API int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    weft__pl_init();
    if (!weft__pl_watch())
        return weft__real_pthread_cond_wait(c, m);
    void *site = __builtin_return_address(0);
    weft__pc_release(m, site);
    int r = weft__real_pthread_cond_wait(c, m);
    weft__pc_reacquired(m, site);
    return r;
}

WEFT_PRELOAD_API int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                                            const struct timespec *abs)
{
    weft__pl_init();
    if (!weft__pl_watch())
        return weft__real_pthread_cond_timedwait(c, m, abs);
    void *site = __builtin_return_address(0);
    weft__pc_release(m, site);
    int r = weft__real_pthread_cond_timedwait(c, m, abs);
    weft__pc_reacquired(m, site);
    return r;
}

WEFT_PRELOAD_API int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clk,
                                            const struct timespec *abs)
{
    weft__pl_init();
    if (!weft__pl_watch())
        return weft__real_pthread_cond_clockwait(c, m, clk, abs);
    void *site = __builtin_return_address(0);
    weft__pc_release(m, site);
    int r = weft__real_pthread_cond_clockwait(c, m, clk, abs);
    weft__pc_reacquired(m, site);
    return r;
}

/* ---- pthread_once: a call from inside its own init routine hangs -------- */

#define WEFT__ONCE_DEPTH 8
static __thread pthread_once_t *weft__po_stack[WEFT__ONCE_DEPTH]
    __attribute__((tls_model("initial-exec")));
static __thread unsigned weft__po_n __attribute__((tls_model("initial-exec")));

WEFT_PRELOAD_API int pthread_once(pthread_once_t *o, void (*fn)(void))
{
    weft__pl_init();
    if (!weft__pl_watch() || weft__po_n == WEFT__ONCE_DEPTH)
        return weft__real_pthread_once(o, fn);
    for (unsigned i = 0; i < weft__po_n; i++)
        if (weft__po_stack[i] == o) {
            weft__ck_lock_t cl = {o, "pthread_once", WEFT__LK_PMUTEX};
            WEFT__PL_CALL(weft__check_self_deadlock(&cl, __builtin_return_address(0)));
            weft__check_stop_hang();
            break;
        }
    weft__po_stack[weft__po_n++] = o;
    int r = weft__real_pthread_once(o, fn);
    weft__po_n--;
    return r;
}
