/*
 * mutex.c - weft_mutex_t: a futex mutex with ownership and adaptive spinning.
 *
 * DESIGN
 * The whole state is one 32-bit word, so taking the lock and recording the
 * owner are a single compare-and-swap:
 *
 *   _word == 0                    unlocked
 *   _word == tid                  locked by thread `tid`, nobody asleep
 *   _word == tid | WEFT__WAITERS  locked by `tid`; threads may be asleep in
 *                                 futex_wait on _word, so unlock must wake one
 *
 * Linux thread ids are below 2^22 (PID_MAX_LIMIT), so bit 31 is free.
 *
 * Lock: one CAS 0 -> tid. On failure, spin for a while (the owner usually
 * releases within a fraction of a microsecond, while parking and being woken
 * costs tens of microseconds), then set the waiters bit and sleep.
 * A thread that was asleep re-takes the lock as tid | WAITERS, because it
 * cannot know whether others still sleep: at worst one unnecessary wake-up.
 *
 * Unlock: one CAS tid -> 0. If it fails, either the caller is not the owner
 * (-EPERM, nothing changes) or the waiters bit is set: exchange in 0 and wake
 * one sleeper. The lock is unfair by design: a running thread may take it
 * before the woken one runs, which keeps contended throughput high.
 *
 * Spin policy (weft__mutex_spin; the numbers behind it are in docs/perf.md).
 * On the 2-CPU machine it was tuned on, a pause instruction takes ~26 ns,
 * sched_yield() ~0.55 us when nothing else is runnable, a hand-over to a
 * spinning thread 0.1-0.6 us round trip, and waking a parked thread on the
 * other CPU 5 us (while that CPU still polls) to ~80 us (once it has gone
 * idle) round trip. A waiter therefore does not park at once:
 *  1. It probes the word after pauses whose count doubles (1, 2, 4, ...
 *     32: 63 pauses, ~1.6 us in all). Probing rarely leaves the line in
 *     the owner's cache, so an owner that unlocks and relocks runs at
 *     uncontended speed between probes, instead of the line moving between
 *     CPUs on every acquisition as it does under a tight spin.
 *  2. It then yields the CPU before each further probe, up to
 *     WEFT__SPIN_ROUNDS probes in all (~7 us when nothing else runs). With
 *     more threads than CPUs the owner may be preempted: yielding lets it,
 *     or another runnable thread, use the CPU rather than burning a slice.
 *  3. Only then does it park, having spent about one fast wake-up's cost,
 *     and a tenth of a slow one's.
 * The budget is fixed rather than adaptive (glibc's adaptive mutex keeps a
 * per-lock estimate): under contention such an estimate climbs to its cap
 * anyway, and the whole budget is small next to one wake-up, so adapting
 * would save little. The _spin field is left unused.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "internal/base.h"
#include "internal/check.h"
#include "internal/instrument.h"
#include "weft/sync.h"

#define WEFT__WAITERS 0x80000000u

/* _word and _spin, adjacent: the fields changed with atomics, which
 * Helgrind must not race-check (it does not understand atomics). */
#define WEFT__MUTEX_ATOMIC_BYTES ((unsigned)(offsetof(weft_mutex_t, _spin) + sizeof(uint32_t)))

static inline uint32_t weft__owner_of(uint32_t w)
{
    return w & ~WEFT__WAITERS;
}

static bool weft__checking(void)
{
    return (__atomic_load_n(&weft__instr, __ATOMIC_RELAXED) & WEFT__INSTR_CHECK) != 0;
}

static const char *weft__mname(const weft_mutex_t *m)
{
    return m->_name != NULL ? m->_name : "(unnamed)";
}

int weft_mutex_init(weft_mutex_t *m, const char *name)
{
    if (m == NULL)
        return -EINVAL;
    m->_word = 0;
    m->_spin = 0;
    m->_name = name;
    m->_check = NULL;
    if (WEFT__INSTRUMENTED()) {
        weft__ann_lock_create(m, &m->_word, WEFT__MUTEX_ATOMIC_BYTES, 0);
        if (weft__checking()) {
            weft__ck_lock_t cl = {m, name, WEFT__LK_MUTEX};
            weft__check_lock_new(&cl);
        }
    }
    return 0;
}

int weft_mutex_destroy(weft_mutex_t *m)
{
    if (m == NULL)
        return -EINVAL;
    /* Acquire: pairs with the release in weft_mutex_unlock(), so whatever
     * the last owner wrote is visible before the memory is reused. */
    bool held = __atomic_load_n(&m->_word, __ATOMIC_ACQUIRE) != 0;
    if (WEFT__INSTRUMENTED() && weft__checking()) {
        weft__ck_lock_t cl = {m, m->_name, WEFT__LK_MUTEX};
        weft__check_lock_destroy(&cl, held);
    }
    if (held)
        return -EBUSY;
    if (WEFT__INSTRUMENTED())
        weft__ann_lock_destroy(m, 0);
    return 0;
}

/* One probe: take the lock if it is free. Loads first, so a probe of a held
 * lock only shares the owner's cache line instead of taking it away. */
static inline bool weft__mutex_probe(weft_mutex_t *m, uint32_t tid)
{
    uint32_t w = __atomic_load_n(&m->_word, __ATOMIC_RELAXED);
    /* Acquire: pairs with the release CAS/exchange in weft_mutex_unlock(). */
    return w == 0 && __atomic_compare_exchange_n(&m->_word, &w, tid, false, __ATOMIC_ACQUIRE,
                                                 __ATOMIC_RELAXED);
}

/*
 * Wait for the lock without sleeping, for the bounded budget described at
 * the top of the file. Returns true once the caller owns the lock. A timed
 * caller stops yielding when its deadline has passed (a yield can give the
 * CPU away for a whole time slice), and then parks, which times out.
 */
static bool weft__mutex_spin(weft_mutex_t *m, uint32_t tid, const weft__deadline_t *d)
{
    for (uint32_t round = 0; round < WEFT__SPIN_ROUNDS; round++) {
        if (!weft__spin_pause(round, d))
            return false;
        if (weft__mutex_probe(m, tid))
            return true;
    }
    return false;
}

/* One step of a checked wait: sleep at most until the next check is due,
 * then (if due) let the check layer look for a deadlock or starvation.
 * -ETIMEDOUT only for the caller's own deadline. */
static int weft__mutex_wait_checked(weft_mutex_t *m, uint32_t w, const weft__deadline_t *d,
                                    const weft__ck_lock_t *ck, uint64_t start, uint64_t *next)
{
    uint64_t now = weft__now_ns();
    weft__deadline_t slice;
    (void)weft__deadline_init(&slice, (int64_t)(*next > now ? *next - now : 0));
    bool last = d != NULL && !d->forever &&
                (d->at.tv_sec < slice.at.tv_sec ||
                 (d->at.tv_sec == slice.at.tv_sec && d->at.tv_nsec <= slice.at.tv_nsec));
    int r = weft__futex_wait(&m->_word, w, last ? d : &slice);
    if (r == -ETIMEDOUT && last)
        return -ETIMEDOUT;
    now = weft__now_ns();
    if (now < *next)
        return 0;
    *next = now + WEFT__CHECK_SLICE_NS;
    return weft__check_blocked(ck, 0, now - start) == -EDEADLK ? -EDEADLK : 0;
}

/*
 * Sleep until the lock is ours or the deadline passes.
 *
 * Missed wake-up argument: we only sleep with futex_wait(&_word, w) where w
 * has the waiters bit set, and the kernel re-checks _word == w atomically
 * with queueing us. The owner's unlock changes _word (to 0) before it calls
 * futex_wake, and because it found the bit set it does call futex_wake. So
 * either the kernel sees the changed word and refuses to sleep, or we are
 * already queued when the wake comes.
 *
 * With checking on (ck != NULL) the sleep is cut into slices; after each the
 * check layer looks for a wait-for cycle and -EDEADLK ends the wait.
 */
static int weft__mutex_park(weft_mutex_t *m, uint32_t tid, const weft__deadline_t *d,
                            const weft__ck_lock_t *ck)
{
    uint64_t start = ck != NULL ? weft__now_ns() : 0;
    uint64_t next = start + WEFT__CHECK_SLICE_NS;
    uint32_t w = __atomic_load_n(&m->_word, __ATOMIC_RELAXED);
    for (;;) {
        if (w == 0) {
            /* Acquire: pairs with the release in weft_mutex_unlock(). */
            if (__atomic_compare_exchange_n(&m->_word, &w, tid | WEFT__WAITERS, false,
                                            __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
                return 0;
            continue;
        }
        if (!(w & WEFT__WAITERS)) {
            /* Relaxed: setting the bit publishes nothing; the futex syscall
             * and the unlocker's exchange order the hand-over. */
            if (!__atomic_compare_exchange_n(&m->_word, &w, w | WEFT__WAITERS, false,
                                             __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                continue;
            w |= WEFT__WAITERS;
        }
        int r = ck != NULL ? weft__mutex_wait_checked(m, w, d, ck, start, &next)
                           : weft__futex_wait(&m->_word, w, d);
        if (r == -ETIMEDOUT || r == -EDEADLK)
            return r;
        w = __atomic_load_n(&m->_word, __ATOMIC_RELAXED);
    }
}

/* The contended path. -EDEADLK if the caller is the owner. */
static WEFT__COLD int weft__mutex_lock_slow(weft_mutex_t *m, uint32_t tid,
                                            const weft__deadline_t *d, const weft__ck_lock_t *ck)
{
    if (weft__owner_of(__atomic_load_n(&m->_word, __ATOMIC_RELAXED)) == tid)
        return -EDEADLK;
    if (weft__mutex_spin(m, tid, d))
        return 0;
    if (d != NULL && !d->forever && weft__deadline_passed(d))
        return -ETIMEDOUT;
    return weft__mutex_park(m, tid, d, ck);
}

static inline bool weft__mutex_trylock_fast(weft_mutex_t *m, uint32_t tid)
{
    uint32_t zero = 0;
    /* Acquire: pairs with the release in weft_mutex_unlock(). */
    return __atomic_compare_exchange_n(&m->_word, &zero, tid, false, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}

static WEFT__COLD void weft__mutex_self_deadlock(const weft_mutex_t *m)
{
    weft__fatal("deadlock: thread %u locked mutex '%s' (%p) that it already holds",
                weft__tid(), weft__mname(m), (const void *)m);
}

/*
 * Locking with annotations for TSan/Helgrind and the check layer. `flags`
 * are annotation flags: WEFT__ANN_TRY marks trylock and timedlock for the
 * race detectors; for the check layer only a trylock (d == NULL with TRY)
 * cannot block and so creates no lock-order edge.
 */
static WEFT__COLD int weft__mutex_lock_instr(weft_mutex_t *m, uint32_t tid,
                                             const weft__deadline_t *d, unsigned flags,
                                             void *site)
{
    weft__ck_lock_t cl = {m, m->_name, WEFT__LK_MUTEX};
    const weft__ck_lock_t *ck = weft__checking() ? &cl : NULL;
    bool is_try = (flags & WEFT__ANN_TRY) && d == NULL;
    unsigned ckf = is_try ? WEFT__CK_TRY : 0;
    if (ck != NULL && !is_try &&
        weft__owner_of(__atomic_load_n(&m->_word, __ATOMIC_RELAXED)) == tid) {
        weft__check_self_deadlock(ck, site);
        return -EDEADLK;
    }
    weft__ann_pre_lock(m, &m->_word, WEFT__MUTEX_ATOMIC_BYTES, flags);
    /* Taken at once: the check layer's one-call fast path (its context
     * cache), as in the preload library. Only a wait needs the pre/post
     * pair, which makes the waiter visible to wait-for walks. */
    if (weft__mutex_trylock_fast(m, tid)) {
        weft__ann_post_lock(m, flags);
        if (ck != NULL)
            weft__check_acquired(ck, ckf, site);
        return 0;
    }
    if (is_try) {
        weft__ann_post_lock(m, flags | WEFT__ANN_FAILED);
        return -EBUSY;
    }
    if (ck != NULL)
        weft__check_acquire_pre(ck, ckf, site);
    int r = weft__mutex_lock_slow(m, tid, d, ck);
    weft__ann_post_lock(m, r == 0 ? flags : flags | WEFT__ANN_FAILED);
    if (ck != NULL)
        weft__check_acquire_post(ck, ckf, r == 0, site);
    return r;
}

/* The implementation of a capability is exempt from the analysis that
 * checks its users (clang -Wthread-safety). */
WEFT__NOIPA WEFT_NO_THREAD_SAFETY_ANALYSIS void weft_mutex_lock(weft_mutex_t *m)
{
    if (weft__unlikely(m == NULL))
        weft__fatal("weft_mutex_lock: NULL mutex");
    uint32_t tid = weft__tid();
    int r;
    if (WEFT__INSTRUMENTED())
        r = weft__mutex_lock_instr(m, tid, NULL, 0, __builtin_return_address(0));
    else if (weft__likely(weft__mutex_trylock_fast(m, tid)))
        return;
    else
        r = weft__mutex_lock_slow(m, tid, NULL, NULL);
    if (weft__unlikely(r != 0)) {
        /* Reported already when checking is on; stop rather than hang. */
        if (weft__checking()) {
            weft__check_stop_hang();
            r = weft__mutex_lock_slow(m, tid, NULL, NULL); /* WEFT_CHECK_ON_DEADLOCK=wait */
        }
        if (r != 0)
            weft__mutex_self_deadlock(m);
    }
}

WEFT__NOIPA int weft_mutex_trylock(weft_mutex_t *m)
{
    if (m == NULL)
        return -EINVAL;
    uint32_t tid = weft__tid();
    if (WEFT__INSTRUMENTED())
        return weft__mutex_lock_instr(m, tid, NULL, WEFT__ANN_TRY, __builtin_return_address(0));
    return weft__mutex_trylock_fast(m, tid) ? 0 : -EBUSY;
}

WEFT__NOIPA int weft_mutex_timedlock(weft_mutex_t *m, int64_t timeout_ns)
{
    if (m == NULL || !weft__timeout_valid(timeout_ns))
        return -EINVAL;
    uint32_t tid = weft__tid();
    weft__deadline_t d;
    if (!WEFT__INSTRUMENTED() && weft__mutex_trylock_fast(m, tid))
        return 0;
    (void)weft__deadline_init(&d, timeout_ns);
    if (WEFT__INSTRUMENTED())
        return weft__mutex_lock_instr(m, tid, &d, WEFT__ANN_TRY, __builtin_return_address(0));
    return weft__mutex_lock_slow(m, tid, &d, NULL);
}

WEFT__NOIPA WEFT_NO_THREAD_SAFETY_ANALYSIS int weft_mutex_unlock(weft_mutex_t *m)
{
    if (m == NULL)
        return -EINVAL;
    uint32_t tid = weft__tid();
    bool instr = WEFT__INSTRUMENTED();
    if (instr) {
        if (weft__owner_of(__atomic_load_n(&m->_word, __ATOMIC_RELAXED)) != tid) {
            if (weft__checking()) {
                weft__ck_lock_t cl = {m, m->_name, WEFT__LK_MUTEX};
                (void)weft__check_release(&cl, 0, __builtin_return_address(0));
            }
            return -EPERM;
        }
        if (weft__checking()) {
            weft__ck_lock_t cl = {m, m->_name, WEFT__LK_MUTEX};
            (void)weft__check_release(&cl, 0, __builtin_return_address(0));
        }
        weft__ann_pre_unlock(m, 0);
    }
    uint32_t w = tid;
    /* Release: pairs with the acquire CAS in every lock path, so the
     * critical section happens-before the next owner's. */
    if (!__atomic_compare_exchange_n(&m->_word, &w, 0, false, __ATOMIC_RELEASE,
                                     __ATOMIC_RELAXED)) {
        if (weft__owner_of(w) != tid)
            return -EPERM;
        /* Waiters bit set. Release: as above; the exchange also clears the
         * bit, and the wake-up below pairs with weft__mutex_park()'s wait. */
        (void)__atomic_exchange_n(&m->_word, 0, __ATOMIC_RELEASE);
        weft__futex_wake(&m->_word, 1);
    }
    if (instr)
        weft__ann_post_unlock(m, 0);
    return 0;
}

bool weft_mutex_held(const weft_mutex_t *m)
{
    if (m == NULL)
        return false;
    /* Relaxed: only the owner itself can make this true or false. */
    return weft__owner_of(__atomic_load_n(&m->_word, __ATOMIC_RELAXED)) == weft__tid();
}

/* The smallest non-NULL entry strictly above `after` (by address), or NULL. */
static weft_mutex_t *weft__next_above(weft_mutex_t *const ms[], size_t n, uintptr_t after)
{
    weft_mutex_t *best = NULL;
    for (size_t i = 0; i < n; i++) {
        uintptr_t a = (uintptr_t)ms[i];
        if (ms[i] != NULL && a > after && (best == NULL || a < (uintptr_t)best))
            best = ms[i];
    }
    return best;
}

/* The largest non-NULL entry strictly below `before`, or NULL. */
static weft_mutex_t *weft__next_below(weft_mutex_t *const ms[], size_t n, uintptr_t before)
{
    weft_mutex_t *best = NULL;
    for (size_t i = 0; i < n; i++) {
        uintptr_t a = (uintptr_t)ms[i];
        if (ms[i] != NULL && a < before && (best == NULL || a > (uintptr_t)best))
            best = ms[i];
    }
    return best;
}

/*
 * Ascending address order is the one global order: any two callers take
 * their common mutexes in the same sequence, so no wait-for cycle can form.
 * Selection without sorting needs no memory (n is small in practice), and
 * skips repeated entries for free.
 */
WEFT_NO_THREAD_SAFETY_ANALYSIS void weft_mutex_lock_all(weft_mutex_t *const ms[], size_t n)
{
    if (ms == NULL)
        return;
    for (weft_mutex_t *m = weft__next_above(ms, n, 0); m != NULL;
         m = weft__next_above(ms, n, (uintptr_t)m))
        weft_mutex_lock(m);
}

WEFT_NO_THREAD_SAFETY_ANALYSIS void weft_mutex_unlock_all(weft_mutex_t *const ms[], size_t n)
{
    if (ms == NULL)
        return;
    for (weft_mutex_t *m = weft__next_below(ms, n, UINTPTR_MAX); m != NULL;
         m = weft__next_below(ms, n, (uintptr_t)m))
        (void)weft_mutex_unlock(m);
}
