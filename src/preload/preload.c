/*
 * preload.c - libweft-preload.so: lets the check layer watch unmodified
 * pthread programs. Loaded with LD_PRELOAD (weft check does this), it
 * interposes the pthread mutex, rwlock, condition variable and once calls
 * and the POSIX semaphore calls, tells the check layer what happens, and
 * calls the C library's own function for the real work.
 *
 * Promises: the program's behaviour is unchanged. Every call reaches the
 * real function with the same arguments, and its return value is passed
 * back untouched. The differences: a blocking lock is first tried (for a
 * default-type mutex, glibc's own trylock step done inline: the lock word's
 * compare-and-swap and the owner and user count, see weft__pm_trylock), and
 * when that fails waits in slices (the real timed call, on CLOCK_MONOTONIC)
 * so that a deadlock can be noticed; a deadlock that would hang forever
 * ends the process with status 66 after its report, under `weft check`.
 *
 * Cost: an acquisition that did not wait, in a held-lock context this
 * thread has seen before, and a release of the most recent lock, run inline
 * in the interposer (weft__pl_acquired, weft__pl_releasing): a few dozen
 * instructions on this thread's own cache lines, no calls, errno untouched.
 *
 * The real functions are found with dlsym(RTLD_NEXT); the condition
 * variable functions with dlvsym at GLIBC_2.3.2, the version programs link
 * against (plain dlsym may return the old compatibility version).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal/base.h"
#include "internal/check.h"
#include "internal/instrument.h"
#include "preload/preload.h"
#include "weft/check.h"

#define WEFT__REAL(ret, name, params) weft__##name##_fn weft__real_##name;
WEFT__PRELOAD_FUNCTIONS(WEFT__REAL)
#undef WEFT__REAL

__thread int weft__pl_depth __attribute__((tls_model("initial-exec")));


#define WEFT__RESOLVE(name) weft__real_##name = (weft__##name##_fn)dlsym(RTLD_NEXT, #name)

static void weft__pl_resolve(void)
{
    WEFT__RESOLVE(pthread_mutex_trylock);
    WEFT__RESOLVE(pthread_mutex_timedlock);
    WEFT__RESOLVE(pthread_mutex_clocklock);
    WEFT__RESOLVE(pthread_mutex_unlock);
    WEFT__RESOLVE(pthread_mutex_init);
    WEFT__RESOLVE(pthread_mutex_destroy);
    WEFT__RESOLVE(pthread_rwlock_rdlock);
    WEFT__RESOLVE(pthread_rwlock_wrlock);
    WEFT__RESOLVE(pthread_rwlock_tryrdlock);
    WEFT__RESOLVE(pthread_rwlock_trywrlock);
    WEFT__RESOLVE(pthread_rwlock_timedrdlock);
    WEFT__RESOLVE(pthread_rwlock_timedwrlock);
    WEFT__RESOLVE(pthread_rwlock_clockrdlock);
    WEFT__RESOLVE(pthread_rwlock_clockwrlock);
    WEFT__RESOLVE(pthread_rwlock_unlock);
    WEFT__RESOLVE(pthread_rwlock_init);
    WEFT__RESOLVE(pthread_rwlock_destroy);
    weft__real_pthread_cond_wait =
        (weft__pthread_cond_wait_fn)dlvsym(RTLD_NEXT, "pthread_cond_wait", "GLIBC_2.3.2");
    weft__real_pthread_cond_timedwait = (weft__pthread_cond_timedwait_fn)dlvsym(
        RTLD_NEXT, "pthread_cond_timedwait", "GLIBC_2.3.2");
    if (weft__real_pthread_cond_wait == NULL)
        WEFT__RESOLVE(pthread_cond_wait);
    if (weft__real_pthread_cond_timedwait == NULL)
        WEFT__RESOLVE(pthread_cond_timedwait);
    WEFT__RESOLVE(pthread_cond_clockwait);
    WEFT__RESOLVE(pthread_once);
    WEFT__RESOLVE(sem_wait);
    WEFT__RESOLVE(sem_trywait);
    WEFT__RESOLVE(sem_timedwait);
    WEFT__RESOLVE(sem_clockwait);
    WEFT__RESOLVE(sem_post);
    WEFT__RESOLVE(sem_init);
    WEFT__RESOLVE(sem_destroy);
    /* Last, with release: pairs with the acquire load in weft__pl_init();
     * a thread that sees this pointer sees all the others. */
    __atomic_store_n(&weft__real_pthread_mutex_lock,
                     (weft__pthread_mutex_lock_fn)dlsym(RTLD_NEXT, "pthread_mutex_lock"),
                     __ATOMIC_RELEASE);
}

/* Resolve on first use: interposed calls can come before our constructor
 * (from other libraries' constructors). One thread resolves; any other
 * arriving meanwhile waits for it. */
void weft__pl_init_slow(void)
{
    static int resolving;
    if (__atomic_exchange_n(&resolving, 1, __ATOMIC_ACQ_REL) == 0)
        weft__pl_resolve();
    while (__atomic_load_n(&weft__real_pthread_mutex_lock, __ATOMIC_ACQUIRE) == NULL)
        weft__cpu_relax();
}

__attribute__((constructor)) static void weft__pl_setup(void)
{
    weft__pl_init();
    weft_check_enable();
}

/* ---- deadlines for the sliced waits ---------------------------------------- */

/* The CLOCK_MONOTONIC time `ns` after the monotonic time `base_ns`. */
static struct timespec weft__pl_after(uint64_t base_ns, uint64_t ns)
{
    uint64_t t = base_ns + ns;
    struct timespec ts = {(time_t)(t / 1000000000u), (long)(t % 1000000000u)};
    return ts;
}

/* The caller's own deadline, converted to CLOCK_MONOTONIC. */
struct timespec weft__pl_to_mono(clockid_t clk, const struct timespec *abs)
{
    struct timespec now, mono;
    clock_gettime(clk, &now);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    int64_t left = (int64_t)(abs->tv_sec - now.tv_sec) * 1000000000 + (abs->tv_nsec - now.tv_nsec);
    if (left < 0)
        left = 0;
    mono.tv_sec += (time_t)(left / 1000000000);
    mono.tv_nsec += (long)(left % 1000000000);
    if (mono.tv_nsec >= 1000000000) {
        mono.tv_sec++;
        mono.tv_nsec -= 1000000000;
    }
    return mono;
}

bool weft__pl_valid_abs(const struct timespec *abs)
{
    return abs != NULL && abs->tv_nsec >= 0 && abs->tv_nsec < 1000000000;
}

static bool weft__pl_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

const struct timespec *weft__pl_slice(uint64_t now_ns, const struct timespec *until,
                                      struct timespec *buf, bool *last)
{
    *buf = weft__pl_after(now_ns, WEFT__CHECK_SLICE_NS);
    *last = until != NULL && !weft__pl_before(buf, until);
    return *last ? until : buf;
}

uint64_t weft__pl_slice_ended(const weft__ck_lock_t *cl, unsigned flags, uint64_t start_ns)
{
    uint64_t now = weft__now_ns();
    int d = 0;
    WEFT__PL_CALL(d = weft__check_blocked(cl, flags, now - start_ns));
    if (d == -EDEADLK)
        weft__check_stop_hang();
    return now;
}


/* ---- livelock: trylock loops that never succeed ------------------------- */

__thread const void *weft__pl_try_lock __attribute__((tls_model("initial-exec")));
__thread uint32_t weft__pl_try_fails __attribute__((tls_model("initial-exec")));
static __thread uint64_t weft__pl_try_since __attribute__((tls_model("initial-exec")));

/* A trylock's result: a failure opens or extends a streak on one lock (the
 * leaf lock path sees it through pl_streak and ends it on progress). */
void weft__pl_try_result(const void *lock, bool ok, void *site)
{
    if (weft__ck_tls != NULL)
        weft__ck_tls->pl_streak = !ok;
    if (ok || lock != weft__pl_try_lock) {
        weft__pl_try_lock = ok ? NULL : lock;
        weft__pl_try_fails = ok ? 0 : 1;
        weft__pl_try_since = ok ? 0 : weft__now_ns();
        return;
    }
    if (++weft__pl_try_fails % 1024 == 0 &&
        weft__now_ns() - weft__pl_try_since > 2000000000ull) {
        weft__pl_depth++;
        weft__check_retry_failed(lock, "trylock", weft__pl_try_fails, site);
        weft__pl_depth--;
    }
}



/* ---- lifecycle hooks shared by the interposers ----------------------------- */

void weft__pl_lock_new(void *addr, int kind)
{
    weft__ck_lock_t cl = {addr, NULL, kind};
    WEFT__PL_CALL(weft__check_lock_new(&cl));
}

void weft__pl_lock_gone(void *addr, int kind, bool held)
{
    weft__ck_lock_t cl = {addr, NULL, kind};
    WEFT__PL_CALL(weft__check_lock_destroy(&cl, held));
}

/* The acquisition hook when the inline fast path did not apply. */
WEFT__COLD void weft__pl_acquired_slow(void *addr, int kind, unsigned flags, void *site)
{
    weft__ck_lock_t cl = {addr, NULL, kind};
    WEFT__PL_CALL(weft__check_acquired(&cl, flags, site));
    weft__pl_progress();
}

/* errno is preserved by weft__check_release itself (its fast path does
 * not touch it), so no save and restore here: this is the hot path. */
WEFT__COLD void weft__pl_unlocking(void *addr, int kind, void *site)
{
    weft__ck_lock_t cl = {addr, NULL, kind};
    weft__pl_depth++;
    (void)weft__check_release(&cl, 0, site);
    weft__pl_depth--;
}
