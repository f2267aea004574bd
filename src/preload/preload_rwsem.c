/*
 * preload_rwsem.c - interposers for pthread reader-writer locks and POSIX
 * semaphores. See preload.c for what the preload library promises.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal/base.h"
#include "internal/check.h"
#include "preload/preload.h"

/* ---- reader-writer locks -------------------------------------------------- */

static weft__ck_lock_t weft__prw_lock(pthread_rwlock_t *rw)
{
    weft__ck_lock_t cl = {rw, NULL, WEFT__LK_PRWLOCK};
    return cl;
}

typedef int (*weft__prw_try_fn)(pthread_rwlock_t *);
typedef int (*weft__prw_clock_fn)(pthread_rwlock_t *, clockid_t, const struct timespec *);

/* The first attempt failed with r: wait in slices, asking the check layer
 * after each slice. */
static WEFT__COLD int weft__prw_wait(pthread_rwlock_t *rw, bool read, int r,
                                    const struct timespec *until, void *site)
{
    weft__ck_lock_t cl = weft__prw_lock(rw);
    unsigned f = read ? WEFT__CK_READ : 0;
    weft__prw_clock_fn clock_fn = read ? weft__real_pthread_rwlock_clockrdlock
                                       : weft__real_pthread_rwlock_clockwrlock;
    if (r != EBUSY)
        return r;
    WEFT__PL_CALL(weft__check_acquire_pre(&cl, f, site));
    uint64_t start = weft__now_ns(), now = start;
    while (r == EBUSY || r == ETIMEDOUT) {
        struct timespec buf;
        bool last;
        r = clock_fn(rw, CLOCK_MONOTONIC, weft__pl_slice(now, until, &buf, &last));
        if (r != ETIMEDOUT || last)
            break;
        now = weft__pl_slice_ended(&cl, f, start);
    }
    WEFT__PL_CALL(weft__check_acquire_post(&cl, f, r == 0, site));
    if (r == 0)
        weft__pl_progress();
    return r;
}

/* Try first: an acquisition that does not wait takes the inline fast path. */
static inline __attribute__((always_inline)) int
weft__prw_acquire(pthread_rwlock_t *rw, bool read, const struct timespec *until,
                                    void *site)
{
    int r = read ? weft__real_pthread_rwlock_tryrdlock(rw) : weft__real_pthread_rwlock_trywrlock(rw);
    if (weft__likely(r == 0)) {
        weft__pl_acquired(rw, WEFT__LK_PRWLOCK, read ? WEFT__CK_READ : 0, site);
        return 0;
    }
    return weft__prw_wait(rw, read, r, until, site);
}

WEFT_PRELOAD_API int pthread_rwlock_rdlock(pthread_rwlock_t *rw)
{
    weft__pl_init();
    if (!weft__pl_watch())
        return weft__real_pthread_rwlock_rdlock(rw);
    return weft__prw_acquire(rw, true, NULL, __builtin_return_address(0));
}

WEFT_PRELOAD_API int pthread_rwlock_wrlock(pthread_rwlock_t *rw)
{
    weft__pl_init();
    if (!weft__pl_watch())
        return weft__real_pthread_rwlock_wrlock(rw);
    return weft__prw_acquire(rw, false, NULL, __builtin_return_address(0));
}

WEFT_PRELOAD_API int pthread_rwlock_timedrdlock(pthread_rwlock_t *rw, const struct timespec *abs)
{
    weft__pl_init();
    if (!weft__pl_watch() || !weft__pl_valid_abs(abs))
        return weft__real_pthread_rwlock_timedrdlock(rw, abs);
    struct timespec until = weft__pl_to_mono(CLOCK_REALTIME, abs);
    return weft__prw_acquire(rw, true, &until, __builtin_return_address(0));
}

WEFT_PRELOAD_API int pthread_rwlock_timedwrlock(pthread_rwlock_t *rw, const struct timespec *abs)
{
    weft__pl_init();
    if (!weft__pl_watch() || !weft__pl_valid_abs(abs))
        return weft__real_pthread_rwlock_timedwrlock(rw, abs);
    struct timespec until = weft__pl_to_mono(CLOCK_REALTIME, abs);
    return weft__prw_acquire(rw, false, &until, __builtin_return_address(0));
}

WEFT_PRELOAD_API int pthread_rwlock_clockrdlock(pthread_rwlock_t *rw, clockid_t clk,
                                                const struct timespec *abs)
{
    weft__pl_init();
    if (!weft__pl_watch() || !weft__pl_valid_abs(abs) ||
        (clk != CLOCK_MONOTONIC && clk != CLOCK_REALTIME))
        return weft__real_pthread_rwlock_clockrdlock(rw, clk, abs);
    struct timespec until = weft__pl_to_mono(clk, abs);
    return weft__prw_acquire(rw, true, &until, __builtin_return_address(0));
}

WEFT_PRELOAD_API int pthread_rwlock_clockwrlock(pthread_rwlock_t *rw, clockid_t clk,
                                                const struct timespec *abs)
{
    weft__pl_init();
    if (!weft__pl_watch() || !weft__pl_valid_abs(abs) ||
        (clk != CLOCK_MONOTONIC && clk != CLOCK_REALTIME))
        return weft__real_pthread_rwlock_clockwrlock(rw, clk, abs);
    struct timespec until = weft__pl_to_mono(clk, abs);
    return weft__prw_acquire(rw, false, &until, __builtin_return_address(0));
}

static int weft__prw_try(pthread_rwlock_t *rw, bool read, void *site)
{
    int r = read ? weft__real_pthread_rwlock_tryrdlock(rw) : weft__real_pthread_rwlock_trywrlock(rw);
    if (r == 0)
        weft__pl_acquired(rw, WEFT__LK_PRWLOCK, WEFT__CK_TRY | (read ? WEFT__CK_READ : 0), site);
    WEFT__PL_CALL(weft__pl_try_result(rw, r == 0, site));
    return r;
}

WEFT_PRELOAD_API int pthread_rwlock_tryrdlock(pthread_rwlock_t *rw)
{
    weft__pl_init();
    if (!weft__pl_watch())
        return weft__real_pthread_rwlock_tryrdlock(rw);
    return weft__prw_try(rw, true, __builtin_return_address(0));
}

WEFT_PRELOAD_API int pthread_rwlock_trywrlock(pthread_rwlock_t *rw)
{
    weft__pl_init();
    if (!weft__pl_watch())
        return weft__real_pthread_rwlock_trywrlock(rw);
    return weft__prw_try(rw, false, __builtin_return_address(0));
}

WEFT_PRELOAD_API int pthread_rwlock_unlock(pthread_rwlock_t *rw)
{
    weft__pl_init();
    if (!weft__pl_watch())
        return weft__real_pthread_rwlock_unlock(rw);
    weft__ckthread_t *t = weft__pl_releasing(rw, WEFT__LK_PRWLOCK, __builtin_return_address(0));
    int r = weft__real_pthread_rwlock_unlock(rw);
    if (t != NULL)
        weft__ck_pop_top(t);
    return r;
}

WEFT_PRELOAD_API int pthread_rwlock_init(pthread_rwlock_t *rw, const pthread_rwlockattr_t *a)
{
    weft__pl_init();
    int r = weft__real_pthread_rwlock_init(rw, a);
    if (r == 0 && weft__pl_watch())
        weft__pl_lock_new(rw, WEFT__LK_PRWLOCK);
    return r;
}

WEFT_PRELOAD_API int pthread_rwlock_destroy(pthread_rwlock_t *rw)
{
    weft__pl_init();
    if (weft__pl_watch())
        weft__pl_lock_gone(rw, WEFT__LK_PRWLOCK, false);
    return weft__real_pthread_rwlock_destroy(rw);
}

/* ---- POSIX semaphores: the permit ledger -------------------------------- */

static weft__ck_lock_t weft__ps_lock(sem_t *s)
{
    weft__ck_lock_t cl = {s, NULL, WEFT__LK_PSEM};
    return cl;
}

/* Wait in slices; past the threshold, explain who holds the permits. The
 * C library's semantics are kept: -1 with errno EINTR or ETIMEDOUT. */
static int weft__ps_wait(sem_t *s, const struct timespec *until, void *site)
{
    weft__ck_lock_t cl = weft__ps_lock(s);
    uint64_t start = weft__now_ns(), now = start;
    bool told = false;
    int r;
    /* Visible to wait-for walks while waiting (a cycle through permit
     * holders is a deadlock), asked after every slice. */
    WEFT__PL_CALL(weft__check_sem_wait_begin(&cl));
    for (;;) {
        struct timespec buf;
        bool last;
        r = weft__real_sem_clockwait(s, CLOCK_MONOTONIC, weft__pl_slice(now, until, &buf, &last));
        if (r == 0 || errno != ETIMEDOUT || last)
            break;
        now = weft__pl_slice_ended(&cl, 0, start);
        uint64_t waited = now - start;
        if (!told && waited >= weft__check_sem_wait_ns()) {
            told = true;
            WEFT__PL_CALL(weft__check_sem_waiting(&cl, waited, site));
        }
    }
    WEFT__PL_CALL(weft__check_sem_wait_end(&cl));
    return r;
}

static int weft__ps_acquire(sem_t *s, const struct timespec *until, void *site)
{
    int r = weft__real_sem_trywait(s);
    if (r != 0 && errno == EAGAIN)
        r = weft__ps_wait(s, until, site);
    if (r == 0) {
        weft__ck_lock_t cl = weft__ps_lock(s);
        WEFT__PL_CALL(weft__check_sem_acquired(&cl, site));
    }
    return r;
}

WEFT_PRELOAD_API int sem_wait(sem_t *s)
{
    weft__pl_init();
    if (!weft__pl_watch())
        return weft__real_sem_wait(s);
    return weft__ps_acquire(s, NULL, __builtin_return_address(0));
}

WEFT_PRELOAD_API int sem_timedwait(sem_t *s, const struct timespec *abs)
{
    weft__pl_init();
    if (!weft__pl_watch() || !weft__pl_valid_abs(abs))
        return weft__real_sem_timedwait(s, abs);
    struct timespec until = weft__pl_to_mono(CLOCK_REALTIME, abs);
    return weft__ps_acquire(s, &until, __builtin_return_address(0));
}

WEFT_PRELOAD_API int sem_clockwait(sem_t *s, clockid_t clk, const struct timespec *abs)
{
    weft__pl_init();
    if (!weft__pl_watch() || !weft__pl_valid_abs(abs) ||
        (clk != CLOCK_MONOTONIC && clk != CLOCK_REALTIME))
        return weft__real_sem_clockwait(s, clk, abs);
    struct timespec until = weft__pl_to_mono(clk, abs);
    return weft__ps_acquire(s, &until, __builtin_return_address(0));
}

WEFT_PRELOAD_API int sem_trywait(sem_t *s)
{
    weft__pl_init();
    int r = weft__real_sem_trywait(s);
    if (r == 0 && weft__pl_watch()) {
        weft__ck_lock_t cl = weft__ps_lock(s);
        WEFT__PL_CALL(weft__check_sem_acquired(&cl, __builtin_return_address(0)));
    }
    return r;
}

WEFT_PRELOAD_API int sem_post(sem_t *s)
{
    weft__pl_init();
    if (weft__pl_watch()) {
        weft__ck_lock_t cl = weft__ps_lock(s);
        WEFT__PL_CALL(weft__check_sem_released(&cl, __builtin_return_address(0)));
    }
    return weft__real_sem_post(s);
}

WEFT_PRELOAD_API int sem_init(sem_t *s, int pshared, unsigned value)
{
    weft__pl_init();
    int r = weft__real_sem_init(s, pshared, value);
    if (r == 0 && weft__pl_watch())
        weft__pl_lock_new(s, WEFT__LK_PSEM);
    return r;
}

WEFT_PRELOAD_API int sem_destroy(sem_t *s)
{
    weft__pl_init();
    if (weft__pl_watch())
        weft__pl_lock_gone(s, WEFT__LK_PSEM, false);
    return weft__real_sem_destroy(s);
}
