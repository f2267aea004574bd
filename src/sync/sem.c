/*
 * sem.c - weft_sem_t: a counting semaphore in one 64-bit word.
 *
 * DESIGN
 * The whole state is one 64-bit word, so taking a permit and leaving the
 * waiting list can be one compare-and-swap:
 *
 *   bits  0..31  permits available, 0 .. WEFT_SEM_MAX (bit 31 stays clear)
 *   bits 32..63  waiters: threads registered in the slow path, asleep in
 *                futex_wait or about to be (or just woken, not yet gone)
 *
 *   permits > 0, waiters == 0   the normal, uncontended state
 *   permits == 0, waiters == 0  exhausted; nobody waits (yet)
 *   permits == 0, waiters > 0   threads are (or are about to be) asleep
 *   permits > 0, waiters > 0    transient: a release has woken a waiter
 *                               (or a waiter is about to re-check)
 *
 * Waiters sleep with futex_wait on the low (permit) half of the word,
 * expecting 0: the kernel compares only those 32 bits, so waiters coming and
 * going never make a sleeper's futex_wait fail.
 *
 * Acquire: one CAS permits -> permits - 1. Otherwise spin a little, then
 * register as a waiter (or take a permit that has appeared, in the same
 * CAS), sleep, and on every wake-up try to take a permit and deregister in
 * one CAS. A waiter whose deadline passes leaves with a CAS that succeeds
 * only while no permit is available: if one is, it takes it instead, so a
 * wake-up meant for it is never thrown away.
 *
 * Release: a CAS loop permits -> permits + 1 that refuses to pass
 * WEFT_SEM_MAX; then, only if the same CAS saw waiters, futex_wake(1).
 *
 * No missed wake-up. A waiter sleeps only if the kernel sees permits == 0
 * atomically with queueing it, and it registered before that. Take a
 * quiescent moment (nobody running in this code) and suppose a waiter W is
 * asleep while permits > 0. Let R be the release that last raised permits
 * from 0. W's futex_wait saw 0, so it came before R, hence R's CAS saw W
 * registered and R, and every later release, called futex_wake(1) while W
 * was still queued: each woke a distinct queued thread (a woken thread
 * cannot queue again while permits > 0), and each woken thread takes one
 * permit before it leaves (its timeout exit refuses while permits > 0). So
 * the releases since R were all consumed and permits is 0: a contradiction.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal/base.h"
#include "internal/check.h"
#include "internal/instrument.h"
#include "weft/sync.h"

#define WEFT__SEM_WAITER ((uint64_t)1 << 32)

_Static_assert(sizeof(((weft_sem_t *)0)->_data) == 8, "semaphore word must be 64 bits");
_Static_assert(WEFT_SEM_MAX <= 0x7fffffffu, "permits must leave bit 31 clear");

static inline uint32_t weft__sem_permits(uint64_t v)
{
    return (uint32_t)v;
}

static inline uint32_t weft__sem_waiters(uint64_t v)
{
    return (uint32_t)(v >> 32);
}

/* The 32-bit futex word: the permit half of _data, wherever the byte order
 * puts it (the kernel reads 32 bits at this address). */
static inline uint32_t *weft__sem_futex(weft_sem_t *s)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (uint32_t *)(void *)&s->_data;
#elif __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (uint32_t *)(void *)&s->_data + 1;
#else
#error "weft_sem_t needs to know the byte order"
#endif
}

static bool weft__sem_checking(void)
{
    return (__atomic_load_n(&weft__instr, __ATOMIC_RELAXED) & WEFT__INSTR_CHECK) != 0;
}

int weft_sem_init(weft_sem_t *s, unsigned permits, const char *name)
{
    if (s == NULL || permits > WEFT_SEM_MAX)
        return -EINVAL;
    s->_data = permits;
    s->_name = name;
    s->_check = NULL;
    /* A new life for the address: the ledger of an earlier one is dropped. */
    if (WEFT__INSTRUMENTED() && weft__sem_checking()) {
        weft__ck_lock_t cl = {s, name, WEFT__LK_SEM};
        weft__check_lock_new(&cl);
    }
    return 0;
}

int weft_sem_destroy(weft_sem_t *s)
{
    if (s == NULL)
        return -EINVAL;
    /* Acquire: pairs with the release CAS in weft_sem_release(), so the
     * last releaser's writes are visible before the memory is reused. */
    if (weft__sem_waiters(__atomic_load_n(&s->_data, __ATOMIC_ACQUIRE)) != 0)
        return -EBUSY;
    return 0;
}

/* Take a permit if one is available, retrying when the CAS loses a race;
 * *v is the caller's last view of the word and is kept current. */
static inline bool weft__sem_take(weft_sem_t *s, uint64_t *v)
{
    while (weft__sem_permits(*v) != 0) {
        /* Acquire: pairs with the release CAS in weft_sem_release(), so
         * what the releaser did before happens-before our use of the permit. */
        if (__atomic_compare_exchange_n(&s->_data, v, *v - 1, true, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return true;
    }
    return false;
}

/* The fast path: one load and one CAS. */
static inline bool weft__sem_take_fast(weft_sem_t *s)
{
    uint64_t v = __atomic_load_n(&s->_data, __ATOMIC_RELAXED);
    return weft__sem_take(s, &v);
}

/* Wait a short while without sleeping, hoping a permit is released before
 * we must park (a park and wake-up costs 5-80 us), with the mutex's spin
 * policy (weft__spin_pause): probing rarely leaves the word in the
 * releasing thread's cache, so a thread that releases and re-acquires runs
 * at uncontended speed between probes, and yielding lets a preempted
 * holder run when there are more threads than CPUs. */
static bool weft__sem_spin(weft_sem_t *s, const weft__deadline_t *d)
{
    for (uint32_t round = 0; round < WEFT__SPIN_ROUNDS; round++) {
        if (!weft__spin_pause(round, d))
            return false;
        uint64_t v = __atomic_load_n(&s->_data, __ATOMIC_RELAXED);
        if (weft__sem_permits(v) != 0 && weft__sem_take(s, &v))
            return true;
    }
    return false;
}

/* Register as a waiter, or take a permit that has appeared meanwhile: the
 * choice is made by one CAS, so a release either sees us registered or we
 * see its permit. Returns true if a permit was taken. */
static bool weft__sem_register(weft_sem_t *s)
{
    uint64_t v = __atomic_load_n(&s->_data, __ATOMIC_RELAXED);
    for (;;) {
        if (weft__sem_take(s, &v))
            return true;
        /* Relaxed: registering publishes nothing; the RMW's place in the
         * word's modification order is what the release CAS observes. */
        if (__atomic_compare_exchange_n(&s->_data, &v, v + WEFT__SEM_WAITER, true, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
            return false;
    }
}

/*
 * After a wake-up (or a timeout, when `expired`): take a permit and
 * deregister in one CAS, or, with no permit, deregister only if expired.
 * Returns 0 (permit taken), -ETIMEDOUT (left), or 1 (sleep again).
 */
static int weft__sem_recheck(weft_sem_t *s, bool expired)
{
    uint64_t v = __atomic_load_n(&s->_data, __ATOMIC_RELAXED);
    for (;;) {
        if (weft__sem_permits(v) != 0) {
            /* Acquire: pairs with the release CAS in weft_sem_release(). */
            if (__atomic_compare_exchange_n(&s->_data, &v, v - 1 - WEFT__SEM_WAITER, true,
                                            __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
                return 0;
        } else if (!expired) {
            return 1;
        } else if (__atomic_compare_exchange_n(&s->_data, &v, v - WEFT__SEM_WAITER, true,
                                               __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            /* Relaxed: leaving takes nothing and publishes nothing. */
            return -ETIMEDOUT;
        }
    }
}

/* A checked wait: the semaphore as the check layer knows it, when the wait
 * began and the next wait-for walk is due, whether the ledger was
 * reported, and the caller's site. */
typedef struct weft__sem_ck {
    weft__ck_lock_t cl;
    uint64_t start, next;
    bool told;
    void *site;
} weft__sem_ck_t;

/*
 * One sleep of a checked wait, at most until the next walk is due. Then
 * the check layer walks the wait-for graph (a deadlock ends the wait; the
 * walks are a slice apart, so that two in a row mean a stable cycle), and
 * once the wait has lasted WEFT_CHECK_SEM_WAIT_MS it explains who holds the
 * permits. Returns 0 (re-check), -ETIMEDOUT (d passed) or -EDEADLK.
 */
static int weft__sem_wait_checked(weft_sem_t *s, const weft__deadline_t *d, weft__sem_ck_t *ck)
{
    uint64_t now = weft__now_ns();
    weft__deadline_t slice;
    (void)weft__deadline_init(&slice, (int64_t)(ck->next > now ? ck->next - now : 0));
    bool last = d != NULL && !d->forever &&
                (d->at.tv_sec < slice.at.tv_sec ||
                 (d->at.tv_sec == slice.at.tv_sec && d->at.tv_nsec <= slice.at.tv_nsec));
    int r = weft__futex_wait(weft__sem_futex(s), 0, last ? d : &slice);
    if (r == -ETIMEDOUT && last)
        return r;
    now = weft__now_ns();
    if (now < ck->next)
        return 0;
    ck->next = now + WEFT__CHECK_SLICE_NS;
    uint64_t waited = now - ck->start;
    if (weft__check_blocked(&ck->cl, 0, waited) == -EDEADLK)
        return -EDEADLK;
    if (!ck->told && waited >= weft__check_sem_wait_ns()) {
        ck->told = true;
        weft__check_sem_waiting(&ck->cl, waited, ck->site);
    }
    return 0;
}

/*
 * Sleep until a permit is ours, the deadline passes, or (checked) the check
 * layer finds a deadlock. The caller is registered; see the missed wake-up
 * argument at the top of the file: a slice that ends is one more spurious
 * wake-up, and a waiter that leaves on -EDEADLK leaves like one whose
 * deadline passed (it takes a permit instead if one is there).
 */
static int weft__sem_park(weft_sem_t *s, const weft__deadline_t *d, void *site)
{
    weft__sem_ck_t ck = {{s, s->_name, WEFT__LK_SEM}, 0, 0, false, site};
    bool checked = site != NULL && weft__sem_checking();
    if (checked) {
        ck.start = weft__now_ns();
        ck.next = ck.start + WEFT__CHECK_SLICE_NS;
        weft__check_sem_wait_begin(&ck.cl);
    }
    int r;
    for (;;) {
        int w = checked ? weft__sem_wait_checked(s, d, &ck)
                        : weft__futex_wait(weft__sem_futex(s), 0, d);
        r = weft__sem_recheck(s, w == -ETIMEDOUT || w == -EDEADLK);
        if (r <= 0) {
            r = r == -ETIMEDOUT && w == -EDEADLK ? -EDEADLK : r;
            break;
        }
    }
    if (checked)
        weft__check_sem_wait_end(&ck.cl);
    return r;
}

/* The contended path: spin, then register and sleep. */
static WEFT__COLD int weft__sem_acquire_slow(weft_sem_t *s, const weft__deadline_t *d,
                                          void *site)
{
    if (d != NULL && !d->forever && weft__deadline_passed(d))
        return weft__sem_take_fast(s) ? 0 : -ETIMEDOUT;
    if (weft__sem_spin(s, d) || weft__sem_register(s))
        return 0;
    return weft__sem_park(s, d, site);
}

/* A permit was taken: tell TSan/Helgrind (happens-after) and the ledger. */
static void weft__sem_taken_instr(weft_sem_t *s, void *site)
{
    weft__ann_acquire(s, &s->_data, sizeof s->_data);
    if (weft__sem_checking()) {
        weft__ck_lock_t cl = {s, s->_name, WEFT__LK_SEM};
        weft__check_sem_acquired(&cl, site);
    }
}

/* Acquisition with annotations and the check layer's permit ledger. */
static WEFT__COLD int weft__sem_acquire_instr(weft_sem_t *s, const weft__deadline_t *d,
                                           void *site)
{
    int r = weft__sem_take_fast(s) ? 0 : weft__sem_acquire_slow(s, d, site);
    if (r == 0)
        weft__sem_taken_instr(s, site);
    return r;
}

/* A checked acquire found a deadlock and reported it: stop rather than hang,
 * or with WEFT_CHECK_ON_DEADLOCK=wait, wait on unchecked. */
static WEFT__COLD void weft__sem_deadlocked(weft_sem_t *s, void *site)
{
    weft__check_stop_hang();
    (void)weft__sem_acquire_slow(s, NULL, NULL);
    weft__sem_taken_instr(s, site);
}

WEFT__NOIPA void weft_sem_acquire(weft_sem_t *s)
{
    if (weft__unlikely(s == NULL))
        weft__fatal("weft_sem_acquire: NULL semaphore");
    if (WEFT__INSTRUMENTED()) {
        void *site = __builtin_return_address(0);
        if (weft__unlikely(weft__sem_acquire_instr(s, NULL, site) != 0))
            weft__sem_deadlocked(s, site);
    } else if (weft__unlikely(!weft__sem_take_fast(s))) {
        (void)weft__sem_acquire_slow(s, NULL, NULL);
    }
}

WEFT__NOIPA int weft_sem_tryacquire(weft_sem_t *s)
{
    if (s == NULL)
        return -EINVAL;
    if (!weft__sem_take_fast(s))
        return -EAGAIN;
    if (WEFT__INSTRUMENTED())
        weft__sem_taken_instr(s, __builtin_return_address(0));
    return 0;
}

WEFT__NOIPA int weft_sem_timedacquire(weft_sem_t *s, int64_t timeout_ns)
{
    if (s == NULL || !weft__timeout_valid(timeout_ns))
        return -EINVAL;
    if (!WEFT__INSTRUMENTED() && weft__sem_take_fast(s))
        return 0;
    weft__deadline_t d;
    (void)weft__deadline_init(&d, timeout_ns);
    if (WEFT__INSTRUMENTED())
        return weft__sem_acquire_instr(s, &d, __builtin_return_address(0));
    return weft__sem_acquire_slow(s, &d, NULL);
}

WEFT__NOIPA int weft_sem_release(weft_sem_t *s)
{
    if (s == NULL)
        return -EINVAL;
    if (WEFT__INSTRUMENTED()) {
        weft__ann_release(s, &s->_data, sizeof s->_data);
        if (weft__sem_checking() && weft__sem_permits(__atomic_load_n(
                                        &s->_data, __ATOMIC_RELAXED)) < WEFT_SEM_MAX) {
            weft__ck_lock_t cl = {s, s->_name, WEFT__LK_SEM};
            weft__check_sem_released(&cl, __builtin_return_address(0));
        }
    }
    uint64_t v = __atomic_load_n(&s->_data, __ATOMIC_RELAXED);
    do {
        if (weft__sem_permits(v) >= WEFT_SEM_MAX)
            return -EOVERFLOW;
        /* Release: pairs with the acquire CAS of whoever takes this permit
         * (weft__sem_take, weft__sem_recheck). */
    } while (!__atomic_compare_exchange_n(&s->_data, &v, v + 1, true, __ATOMIC_RELEASE,
                                          __ATOMIC_RELAXED));
    /* The CAS saw the waiter count as of our release: if a waiter had
     * registered, it is asleep on, or about to check, the permit half we
     * just changed, so one wake-up suffices (argument at the top). */
    if (weft__unlikely(weft__sem_waiters(v) != 0))
        weft__futex_wake(weft__sem_futex(s), 1);
    return 0;
}

unsigned weft_sem_available(const weft_sem_t *s)
{
    if (s == NULL)
        return 0;
    /* Relaxed: a snapshot that may be stale at once; it orders nothing. */
    return weft__sem_permits(__atomic_load_n(&s->_data, __ATOMIC_RELAXED));
}
