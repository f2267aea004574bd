/*
 * fairlock.c - weft_fairlock_t: a FIFO lock with direct hand-off.
 *
 * DESIGN
 * The lock word says who owns the lock and whether anyone is in line:
 *
 *   _state == 0                  unlocked; nobody in line
 *   _state == WEFT__QUEUED       unlocked, but reserved for the threads in
 *                                line for _qlock: only a _qlock holder may
 *                                take it, the fast paths cannot
 *   _state == tid                locked by thread `tid`; nobody in line
 *   _state == tid | WEFT__QUEUED locked by `tid`; threads are queued or in
 *                                line for _qlock, so unlock must go through
 *                                _qlock and hand the lock over
 *
 * Invariant: while the queue is non-empty, QUEUED is set and there is an
 * owner, so the lock is never free while someone waits. QUEUED may also be
 * set with an empty queue (a thread is on its way in, or a timed-out waiter
 * left); whoever holds _qlock last with nobody left in line clears it.
 * Linux thread ids are below 2^22, so bit 31 is free.
 *
 * The queue is a doubly linked list of weft__fair_waiter records that live
 * on the waiters' own stacks, guarded by _qlock, a tiny FIFO ticket lock
 * that spins briefly, then sleeps. Each waiter sleeps on its own `granted`
 * word, so a hand-off wakes exactly the thread that gets the lock.
 *
 * Lock: one CAS 0 -> tid. Otherwise set QUEUED (reserving a free lock) and
 * take a _qlock ticket: that ticket is the thread's place in line, taken
 * with one atomic add before anything that can block. Under _qlock, take
 * the lock if it is free or reserved; else append our record, drop _qlock
 * and sleep until `granted` becomes 1. Appends happen in ticket order, so
 * no thread that asks later is served earlier, and because QUEUED is set
 * before the ticket, the owner cannot release through its fast path for a
 * newcomer's fast path to take the lock ahead of the line.
 *
 * Unlock: one CAS tid -> 0, which fails when QUEUED is set. Then, under
 * _qlock, pop the head, store its tid (with QUEUED if more are queued or in
 * line) into _state, and set its `granted`; with an empty queue, free the
 * lock, reserved if threads are in line for _qlock. The lock passes from
 * owner to owner, or to the line, and is never free for the fast paths
 * while anyone waits, so neither lock's fast path nor trylock can barge
 * ahead of a waiting thread.
 *
 * Timeout: a waiter whose deadline passes takes _qlock. If it was granted
 * meanwhile, it owns the lock and reports success; otherwise it unlinks its
 * record and leaves.
 *
 * Checked waits. With the check layer on, a queued waiter wakes at least
 * every WEFT__CHECK_SLICE_NS so that it can walk the wait-for graph. Its
 * record stays linked while it is awake, so it keeps its place in line, and
 * a hand-off made meanwhile is not lost: `granted` is set before the wake,
 * and the waiter tests it before every sleep (futex_wait also refuses to
 * sleep once it is 1). When the walk finds a deadlock the waiter leaves as
 * on a timeout: under _qlock it either finds the lock granted (and keeps
 * it: the cycle is broken) or unlinks itself.
 *
 * Waking a record that its owner may already have left: the waker calls
 * futex_wake(&w->granted) after w may have returned from the lock call.
 * A process-private futex wake only hashes the address and never touches
 * the memory, so the worst case is a spurious wake-up of whoever sleeps at
 * that address later, and every futex sleeper in weft re-checks its
 * condition. The same holds for weft_mutex_unlock().
 */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal/base.h"
#include "internal/check.h"
#include "internal/instrument.h"
#include "weft/sync.h"

#define WEFT__QUEUED 0x80000000u

/* Iterations of a contended _qlock spin before sleeping; its critical
 * sections are a few dozen instructions. */
#define WEFT__QSPIN 64u

/* A queued thread. Lives on the waiting thread's stack for the duration of
 * its lock call. */
struct weft__fair_waiter {
    struct weft__fair_waiter *next; /* protected by _qlock */
    struct weft__fair_waiter *prev; /* protected by _qlock */
    uint32_t tid;                   /* constant: the waiting thread */
    uint32_t granted;               /* atomic futex: 1 once the lock is ours */
};

static inline uint32_t weft__fair_owner(uint32_t s)
{
    return s & ~WEFT__QUEUED;
}

/* A checked wait: the lock as the check layer knows it, when the first
 * sleep began (0: not yet) and when the next wait-for walk is due. */
typedef struct weft__fair_ck {
    weft__ck_lock_t cl;
    uint64_t start, next;
} weft__fair_ck_t;

static bool weft__fair_checking(void)
{
    return (__atomic_load_n(&weft__instr, __ATOMIC_RELAXED) & WEFT__INSTR_CHECK) != 0;
}

static const char *weft__fair_name(const weft_fairlock_t *l)
{
    return l->_name != NULL ? l->_name : "(unnamed)";
}

/* ---- the queue lock ------------------------------------------------------ */

/*
 * _qlock is a ticket lock, so threads enter the queue in the order they
 * asked for it: the ticket taken with one atomic add is a thread's place in
 * line, before anything that can block. The low 16 bits say which ticket is
 * served, the high 16 bits which ticket is next; both wrap. Fewer than
 * 65536 threads can wait for one _qlock at once, so tickets never collide.
 */
#define WEFT__QTICKET 0x10000u

static inline uint32_t weft__qserving(uint32_t q)
{
    return q & 0xffffu;
}

static inline uint32_t weft__qnext(uint32_t q)
{
    return q >> 16;
}

/*
 * Wait for ticket `my`: spin briefly, then sleep on the whole word.
 *
 * Missed wake-up argument: we sleep only in futex_wait(q, w) with w the
 * value we just saw, which does not serve us, and the kernel re-checks *q.
 * Serving us needs weft__qunlock()'s CAS, which changes the word before its
 * futex_wake; since our ticket is taken, the new word shows a waiter
 * (next != serving) and the unlock does wake. Either the kernel sees the
 * changed word and does not sleep us, or we are asleep when the wake comes.
 */
static WEFT__COLD void weft__qlock_slow(uint32_t *q, uint32_t my)
{
    for (unsigned i = 0;; i++) {
        /* Acquire: pairs with the release CAS in weft__qunlock(). */
        uint32_t w = __atomic_load_n(q, __ATOMIC_ACQUIRE);
        if (weft__qserving(w) == my)
            return;
        if (i < WEFT__QSPIN)
            weft__cpu_relax();
        else
            (void)weft__futex_wait(q, w, NULL);
    }
}

static inline void weft__qlock(uint32_t *q)
{
    /* Acquire: pairs with the release CAS in weft__qunlock(), so we see the
     * previous holder's queue changes. */
    uint32_t w = __atomic_fetch_add(q, WEFT__QTICKET, __ATOMIC_ACQUIRE);
    if (weft__qserving(w) != weft__qnext(w))
        weft__qlock_slow(q, weft__qnext(w));
}

static inline void weft__qunlock(uint32_t *q)
{
    uint32_t w = __atomic_load_n(q, __ATOMIC_RELAXED), n;
    /* Release: pairs with the acquire in weft__qlock()/weft__qlock_slow().
     * A CAS, not an add, so that serving wraps without carrying into next. */
    do
        n = (w & ~0xffffu) | ((w + 1) & 0xffffu);
    while (!__atomic_compare_exchange_n(q, &w, n, true, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
    if (weft__qserving(n) != weft__qnext(n))
        weft__futex_wake(q, INT_MAX);
}

static inline bool weft__qbusy(const uint32_t *q)
{
    /* Acquire: pairs with the release CAS in weft__qunlock(). */
    uint32_t w = __atomic_load_n(q, __ATOMIC_ACQUIRE);
    return weft__qserving(w) != weft__qnext(w);
}

/* True if threads other than the holder hold _qlock tickets. Relaxed: a
 * ticket taken just after this read belongs to a later arrival. */
static inline bool weft__qcontended(const uint32_t *q)
{
    uint32_t w = __atomic_load_n(q, __ATOMIC_RELAXED);
    return ((weft__qnext(w) - weft__qserving(w)) & 0xffffu) > 1;
}

/* ---- queue operations (caller holds _qlock) ------------------------------ */

static void weft__fair_append(weft_fairlock_t *l, struct weft__fair_waiter *w)
{
    w->next = NULL;
    w->prev = l->_tail;
    if (l->_tail != NULL)
        l->_tail->next = w;
    else
        l->_head = w;
    l->_tail = w;
}

/*
 * Drop _qlock. A lock reserved for the _qlock line that nobody is left in
 * (the last in line timed out, or gave up) is freed first, so the fast
 * paths work again.
 */
static void weft__fair_qunlock(weft_fairlock_t *l)
{
    /* Relaxed load: a reserved word changes only under _qlock. Release
     * store: pairs with the acquire CAS in every lock path. */
    if (__atomic_load_n(&l->_state, __ATOMIC_RELAXED) == WEFT__QUEUED && l->_head == NULL &&
        !weft__qcontended(&l->_qlock))
        __atomic_store_n(&l->_state, 0, __ATOMIC_RELEASE);
    weft__qunlock(&l->_qlock);
}

static void weft__fair_unlink(weft_fairlock_t *l, struct weft__fair_waiter *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        l->_head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    else
        l->_tail = w->prev;
}

/* ---- init / destroy ------------------------------------------------------ */

int weft_fairlock_init(weft_fairlock_t *l, const char *name)
{
    if (l == NULL)
        return -EINVAL;
    l->_state = 0;
    l->_qlock = 0;
    l->_head = NULL;
    l->_tail = NULL;
    l->_name = name;
    l->_check = NULL;
    if (WEFT__INSTRUMENTED()) {
        weft__ann_lock_create(l, l, offsetof(weft_fairlock_t, _name), 0);
        if (weft__fair_checking()) {
            weft__ck_lock_t cl = {l, name, WEFT__LK_FAIRLOCK};
            weft__check_lock_new(&cl);
        }
    }
    return 0;
}

int weft_fairlock_destroy(weft_fairlock_t *l)
{
    if (l == NULL)
        return -EINVAL;
    /* Acquire: pairs with the release stores of _state in the unlock paths
     * and with weft__qunlock(), so the last user's writes are visible
     * before the memory is reused. */
    if (__atomic_load_n(&l->_state, __ATOMIC_ACQUIRE) != 0 || weft__qbusy(&l->_qlock))
        return -EBUSY;
    if (WEFT__INSTRUMENTED()) {
        weft__ann_lock_destroy(l, 0);
        if (weft__fair_checking()) {
            weft__ck_lock_t cl = {l, l->_name, WEFT__LK_FAIRLOCK};
            weft__check_lock_destroy(&cl, false);
        }
    }
    return 0;
}

/* ---- locking ------------------------------------------------------------- */

static inline bool weft__fair_trylock_fast(weft_fairlock_t *l, uint32_t tid)
{
    uint32_t zero = 0;
    /* Acquire: pairs with the release CAS/store of _state in the unlock
     * paths. 0 implies an empty queue, so this never barges. */
    return __atomic_compare_exchange_n(&l->_state, &zero, tid, false, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}

/*
 * Under _qlock: take the lock if it is free or reserved (return 0), give
 * up if the deadline has passed (-ETIMEDOUT), else set QUEUED (return 1;
 * the caller then appends itself before dropping _qlock).
 */
static int weft__fair_take_or_mark(weft_fairlock_t *l, uint32_t tid, const weft__deadline_t *d)
{
    uint32_t s = __atomic_load_n(&l->_state, __ATOMIC_RELAXED);
    for (;;) {
        if (weft__fair_owner(s) == 0) {
            /* Free, or reserved for the _qlock line, which we head. Keep
             * QUEUED while others are in line, so our unlock serves them.
             * Acquire: as in weft__fair_trylock_fast(). */
            uint32_t mine = tid | (weft__qcontended(&l->_qlock) ? WEFT__QUEUED : 0);
            if (__atomic_compare_exchange_n(&l->_state, &s, mine, false, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED))
                return 0;
            continue;
        }
        if (d != NULL && !d->forever && weft__deadline_passed(d))
            return -ETIMEDOUT;
        if (s & WEFT__QUEUED)
            return 1;
        /* Relaxed: the bit publishes nothing by itself. It makes the owner's
         * fast unlock CAS fail, sending it through _qlock, whose
         * release/acquire orders our append before its pop. If the owner's
         * CAS wins instead, ours fails and we see 0. */
        if (__atomic_compare_exchange_n(&l->_state, &s, s | WEFT__QUEUED, false, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
            return 1;
    }
}

/*
 * Before taking a _qlock ticket: set QUEUED, so that the owner's unlock
 * goes through _qlock and serves the line instead of freeing the lock for
 * the fast path; a free lock becomes reserved (QUEUED, no owner), which the
 * fast path cannot take either. Retried until the bit is set: if a failed
 * CAS (the owner's unlock won the race) left the word unmarked, the fast
 * path could take the lock again and again while we wait for _qlock, and
 * our place in line would mean nothing. weft__fair_take_or_mark() takes a
 * reserved lock under _qlock.
 */
static void weft__fair_premark(weft_fairlock_t *l)
{
    uint32_t s = __atomic_load_n(&l->_state, __ATOMIC_RELAXED);
    /* Relaxed: as in weft__fair_take_or_mark(). A failed CAS reloads s. */
    while (!(s & WEFT__QUEUED) &&
           !__atomic_compare_exchange_n(&l->_state, &s, s | WEFT__QUEUED, false, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
        ;
}

/*
 * Our deadline passed while queued. Under _qlock, either the hand-off
 * already happened (we own the lock: 0) or we unlink ourselves.
 */
static int weft__fair_leave(weft_fairlock_t *l, struct weft__fair_waiter *w)
{
    weft__qlock(&l->_qlock);
    /* Relaxed: `granted` is written under _qlock, which we now hold. */
    if (__atomic_load_n(&w->granted, __ATOMIC_RELAXED) != 0) {
        weft__fair_qunlock(l);
        return 0;
    }
    /* QUEUED stays set even if the queue is now empty: the owner's unlock
     * then takes the slow path once and clears it. Clearing it here could
     * strip the bit from under a thread that set it and now waits for
     * _qlock, letting the fast path overtake that thread. */
    weft__fair_unlink(l, w);
    weft__fair_qunlock(l);
    return -ETIMEDOUT;
}

/*
 * One sleep on our `granted` word. Unchecked (ck == NULL): until woken or
 * d. Checked: at most until the next walk is due (or d, if sooner), then
 * the walk. Returns 0 (re-check `granted`), -ETIMEDOUT (d passed) or
 * -EDEADLK.
 */
static int weft__fair_sleep(uint32_t *granted, const weft__deadline_t *d, weft__fair_ck_t *ck)
{
    if (ck == NULL)
        return weft__futex_wait(granted, 0, d) == -ETIMEDOUT ? -ETIMEDOUT : 0;
    uint64_t now = weft__now_ns();
    if (ck->start == 0) { /* the first sleep of this wait */
        ck->start = now;
        ck->next = now + WEFT__CHECK_SLICE_NS;
    }
    weft__deadline_t slice;
    (void)weft__deadline_init(&slice, (int64_t)(ck->next > now ? ck->next - now : 0));
    bool last = d != NULL && !d->forever &&
                (d->at.tv_sec < slice.at.tv_sec ||
                 (d->at.tv_sec == slice.at.tv_sec && d->at.tv_nsec <= slice.at.tv_nsec));
    if (weft__futex_wait(granted, 0, last ? d : &slice) == -ETIMEDOUT && last)
        return -ETIMEDOUT;
    now = weft__now_ns();
    if (now < ck->next)
        return 0;
    ck->next = now + WEFT__CHECK_SLICE_NS;
    return weft__check_blocked(&ck->cl, 0, now - ck->start) == -EDEADLK ? -EDEADLK : 0;
}

/*
 * Queue up and sleep until the lock is handed to us, the deadline passes or
 * the check layer finds a deadlock.
 *
 * Missed wake-up argument: we sleep only in futex_wait(&w.granted, 0), and
 * the kernel re-checks the word. The unlocker sets granted = 1 before it
 * calls futex_wake, so either the kernel sees 1 and does not sleep us, or we
 * are already asleep when the wake comes. A checked sleep that ends at a
 * slice boundary changes nothing: the record stays queued and `granted` is
 * tested again before the next sleep.
 */
static int weft__fair_wait(weft_fairlock_t *l, uint32_t tid, const weft__deadline_t *d,
                           weft__fair_ck_t *ck)
{
    struct weft__fair_waiter w = {NULL, NULL, tid, 0};
    /* A spent deadline (timeout 0) gives up here, without making the
     * owner's unlock take the slow path for nobody. */
    if (d != NULL && !d->forever && weft__deadline_passed(d))
        return -ETIMEDOUT;
    weft__fair_premark(l);
    weft__qlock(&l->_qlock);
    int r = weft__fair_take_or_mark(l, tid, d);
    if (r == 1)
        weft__fair_append(l, &w);
    weft__fair_qunlock(l);
    if (r != 1)
        return r;
    /* Acquire: pairs with the release store of `granted` in
     * weft__fair_handoff(), so the previous owner's critical section
     * happens-before ours. */
    while (__atomic_load_n(&w.granted, __ATOMIC_ACQUIRE) == 0) {
        r = weft__fair_sleep(&w.granted, d, ck);
        if (r != 0)
            return weft__fair_leave(l, &w) == 0 ? 0 : r;
    }
    return 0;
}

/* The contended path. -EDEADLK if the caller is the owner. */
static WEFT__COLD int weft__fair_lock_slow(weft_fairlock_t *l, uint32_t tid,
                                           const weft__deadline_t *d, weft__fair_ck_t *ck)
{
    if (weft__fair_owner(__atomic_load_n(&l->_state, __ATOMIC_RELAXED)) == tid)
        return -EDEADLK;
    return weft__fair_wait(l, tid, d, ck);
}

static WEFT__COLD void weft__fair_self_deadlock(const weft_fairlock_t *l)
{
    weft__fatal("deadlock: thread %u locked fair lock '%s' (%p) that it already holds", weft__tid(),
                weft__fair_name(l), (const void *)l);
}

/* Locking with annotations for TSan/Helgrind and the check layer (order
 * edges, held locks, ownership, and sliced sleeps for the wait-for walk; a
 * timed lock can block, so it is not a try-lock for the check layer).
 * -EDEADLK: the caller holds the lock, or a wait-for cycle was found. */
static WEFT__COLD int weft__fair_lock_instr(weft_fairlock_t *l, uint32_t tid,
                                            const weft__deadline_t *d, unsigned flags, void *site)
{
    weft__fair_ck_t ckw = {{l, l->_name, WEFT__LK_FAIRLOCK}, 0, 0};
    weft__fair_ck_t *ck = weft__fair_checking() ? &ckw : NULL;
    if (ck != NULL && weft__fair_owner(__atomic_load_n(&l->_state, __ATOMIC_RELAXED)) == tid) {
        weft__check_self_deadlock(&ckw.cl, site);
        return -EDEADLK;
    }
    if (ck != NULL)
        weft__check_acquire_pre(&ckw.cl, 0, site);
    weft__ann_pre_lock(l, l, offsetof(weft_fairlock_t, _name), flags);
    int r = weft__fair_trylock_fast(l, tid) ? 0 : weft__fair_lock_slow(l, tid, d, ck);
    weft__ann_post_lock(l, r == 0 ? flags : flags | WEFT__ANN_FAILED);
    if (ck != NULL)
        weft__check_acquire_post(&ckw.cl, 0, r == 0, site);
    return r;
}

WEFT__NOIPA WEFT_NO_THREAD_SAFETY_ANALYSIS void weft_fairlock_lock(weft_fairlock_t *l)
{
    if (weft__unlikely(l == NULL))
        weft__fatal("weft_fairlock_lock: NULL lock");
    uint32_t tid = weft__tid();
    int r;
    if (WEFT__INSTRUMENTED())
        r = weft__fair_lock_instr(l, tid, NULL, 0, __builtin_return_address(0));
    else if (weft__likely(weft__fair_trylock_fast(l, tid)))
        return;
    else
        r = weft__fair_lock_slow(l, tid, NULL, NULL);
    if (weft__unlikely(r != 0)) {
        /* -EDEADLK: reported when checking is on; stop rather than hang (under
         * weft check: exit 66), or with WEFT_CHECK_ON_DEADLOCK=wait wait on,
         * unchecked. Re-locking a held lock is fatal either way. */
        if (weft__fair_checking()) {
            weft__check_stop_hang();
            if (weft__fair_lock_slow(l, tid, NULL, NULL) == 0)
                return;
        }
        weft__fair_self_deadlock(l);
    }
}

WEFT__NOIPA WEFT_NO_THREAD_SAFETY_ANALYSIS int weft_fairlock_trylock(weft_fairlock_t *l)
{
    if (l == NULL)
        return -EINVAL;
    uint32_t tid = weft__tid();
    if (WEFT__INSTRUMENTED()) {
        weft__ann_pre_lock(l, l, offsetof(weft_fairlock_t, _name), WEFT__ANN_TRY);
        bool ok = weft__fair_trylock_fast(l, tid);
        weft__ann_post_lock(l, ok ? WEFT__ANN_TRY : WEFT__ANN_TRY | WEFT__ANN_FAILED);
        if (ok && weft__fair_checking()) {
            weft__ck_lock_t cl = {l, l->_name, WEFT__LK_FAIRLOCK};
            weft__check_acquired(&cl, WEFT__CK_TRY, __builtin_return_address(0));
        }
        return ok ? 0 : -EBUSY;
    }
    return weft__fair_trylock_fast(l, tid) ? 0 : -EBUSY;
}

WEFT__NOIPA WEFT_NO_THREAD_SAFETY_ANALYSIS int weft_fairlock_timedlock(weft_fairlock_t *l,
                                                                       int64_t timeout_ns)
{
    if (l == NULL || !weft__timeout_valid(timeout_ns))
        return -EINVAL;
    uint32_t tid = weft__tid();
    weft__deadline_t d;
    if (!WEFT__INSTRUMENTED() && weft__fair_trylock_fast(l, tid))
        return 0;
    (void)weft__deadline_init(&d, timeout_ns);
    if (WEFT__INSTRUMENTED())
        return weft__fair_lock_instr(l, tid, &d, WEFT__ANN_TRY, __builtin_return_address(0));
    return weft__fair_lock_slow(l, tid, &d, NULL);
}

/* ---- unlocking ----------------------------------------------------------- */

/*
 * The caller owns the lock and QUEUED was set. Pass the lock to the head of
 * the queue, or free it if the queue is empty (timed-out waiters left, or
 * an arriving thread set the bit and has not appended itself yet: it will
 * find the lock free under _qlock).
 */
static WEFT__COLD void weft__fair_handoff(weft_fairlock_t *l)
{
    weft__qlock(&l->_qlock);
    struct weft__fair_waiter *w = l->_head;
    bool line = weft__qcontended(&l->_qlock);
    if (w == NULL) {
        /* Release: pairs with the acquire CAS in every lock path. Only the
         * owner and _qlock holders change a held word; we are both. */
        __atomic_store_n(&l->_state, line ? WEFT__QUEUED : 0, __ATOMIC_RELEASE);
        weft__fair_qunlock(l);
        return;
    }
    weft__fair_unlink(l, w);
    uint32_t next = w->tid | (l->_head != NULL || line ? WEFT__QUEUED : 0);
    /* Release: the new owner reads `granted` with acquire (or takes _qlock
     * after a timeout), which orders our critical section before its. */
    __atomic_store_n(&l->_state, next, __ATOMIC_RELEASE);
    __atomic_store_n(&w->granted, 1, __ATOMIC_RELEASE);
    weft__fair_qunlock(l);
    /* w may be gone already: see "Waking a record" at the top. */
    weft__futex_wake(&w->granted, 1);
}

WEFT__NOIPA WEFT_NO_THREAD_SAFETY_ANALYSIS int weft_fairlock_unlock(weft_fairlock_t *l)
{
    if (l == NULL)
        return -EINVAL;
    uint32_t tid = weft__tid();
    bool instr = WEFT__INSTRUMENTED();
    if (instr) {
        if (weft__fair_checking()) {
            weft__ck_lock_t cl = {l, l->_name, WEFT__LK_FAIRLOCK};
            (void)weft__check_release(&cl, 0, __builtin_return_address(0));
        }
        if (weft__fair_owner(__atomic_load_n(&l->_state, __ATOMIC_RELAXED)) != tid)
            return -EPERM;
        weft__ann_pre_unlock(l, 0);
    }
    uint32_t s = tid;
    /* Release: pairs with the acquire CAS in every lock path. */
    if (!__atomic_compare_exchange_n(&l->_state, &s, 0, false, __ATOMIC_RELEASE,
                                     __ATOMIC_RELAXED)) {
        if (weft__fair_owner(s) != tid)
            return -EPERM;
        weft__fair_handoff(l);
    }
    if (instr)
        weft__ann_post_unlock(l, 0);
    return 0;
}

bool weft_fairlock_held(const weft_fairlock_t *l)
{
    if (l == NULL)
        return false;
    /* Relaxed: only the caller can make this true or false for itself: its
     * own lock calls (a hand-off to it completes inside one) and unlock. */
    return weft__fair_owner(__atomic_load_n(&l->_state, __ATOMIC_RELAXED)) == weft__tid();
}
