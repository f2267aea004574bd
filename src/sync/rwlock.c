/*
 * rwlock.c - weft_rwlock_t: a writer-preferring reader-writer lock.
 *
 * DESIGN
 * One 64-bit state word decides who holds the lock; two futex sequence
 * words are where readers and writers sleep:
 *
 *   bits  0..29  R       readers holding the lock
 *   bit  30      RSLEEP  readers may be asleep on _rseq
 *   bit  31      WRITER  write-held; _owner names the writer
 *   bits 32..63  WW      writers waiting: registered in the slow path,
 *                        asleep on _wseq or about to be
 *
 *   R == 0, !WRITER, WW == 0    free
 *   R > 0,  !WRITER, WW == 0    read-held; new readers join
 *   R > 0,  !WRITER, WW > 0     read-held, writers wait; new readers wait
 *                               too (writer preference), the last reader
 *                               out wakes one writer
 *   R == 0, WRITER              write-held; everyone else waits
 *   R == 0, !WRITER, WW > 0     transient: a writer has been woken
 *
 * A reader may enter when the state is "readable": no WRITER and WW == 0.
 * A writer may enter when it is "writable": no WRITER and R == 0 (a writer
 * that is still spinning may overtake registered ones; only the ones that
 * registered block readers). Fast paths are one CAS; _owner is written by
 * the writer only, after its CAS, and read by unlock to tell a write release
 * from a read release.
 *
 * Wake-ups. Only two kinds of state change let someone in who had to wait:
 *  - writable again: the last reader leaves, or the writer unlocks. If that
 *    CAS saw WW > 0, it bumps _wseq and wakes one writer;
 *  - readable again: the writer unlocks with WW == 0, or the last waiting
 *    writer gives up on its deadline. If that CAS saw RSLEEP, it clears the
 *    bit, bumps _rseq and wakes every reader.
 *
 * No missed wake-up. A sleeper loads the sequence word (acquire) before it
 * loads the state, and a waker bumps the sequence word (release) after its
 * state CAS. That is message passing: if the sleeper read the old state, it
 * read the old sequence too, so its futex_wait either fails at once (the
 * bump already happened) or is queued before the waker's futex_wake. The
 * waker knows to wake because a writer registers in WW, and a reader sets
 * RSLEEP, with a CAS on a state in which it may not enter; the freeing CAS
 * comes later in the word's modification order and so sees the mark.
 * Writers are woken one at a time; a woken writer either takes the lock, or
 * finds it held again by one whose release will wake the next, or gives up
 * with a CAS that succeeds only while the lock is not writable: a wake-up is
 * never swallowed by a writer that leaves.
 *
 * Checked waits. With the check layer on, a sleeper wakes at least every
 * WEFT__CHECK_SLICE_NS to let it walk the wait-for graph. For the protocol
 * above a slice that ends is one more spurious wake-up: the sleeper
 * re-reads the sequence word and the state and sleeps again, so no wake-up
 * is lost (a wake aimed at it while it was awake finds it re-checking a
 * state the waker already changed). When the walk finds a deadlock the
 * waiter leaves exactly as on a timeout: a reader simply goes, a writer
 * leaves through weft__rw_wrleave(), so nothing it held back stays held.
 */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal/base.h"
#include "internal/check.h"
#include "internal/instrument.h"
#include "weft/sync.h"

#define WEFT__RW_READERS ((uint64_t)0x3fffffff)
#define WEFT__RW_RSLEEP ((uint64_t)1 << 30)
#define WEFT__RW_WRITER ((uint64_t)1 << 31)
#define WEFT__RW_WW ((uint64_t)1 << 32)
#define WEFT__RW_WW_MASK (~(uint64_t)0 << 32)
#define WEFT__RW_SPIN 64u

/* Public entry points: opaque to inter-procedural analysis (see WEFT__NOIPA),
 * and exempt from clang's lock analysis, since they implement the very
 * acquire and release it reasons about. */
#define WEFT__RW_API WEFT__NOIPA WEFT_NO_THREAD_SAFETY_ANALYSIS

/* Every private field changed with atomics, hidden from Helgrind. */
#define WEFT__RW_WORDS ((unsigned)offsetof(weft_rwlock_t, _name))

static inline bool weft__rw_readable(uint64_t s)
{
    return (s & (WEFT__RW_WRITER | WEFT__RW_WW_MASK)) == 0 &&
           (s & WEFT__RW_READERS) != WEFT__RW_READERS;
}

static inline bool weft__rw_writable(uint64_t s)
{
    return (s & (WEFT__RW_READERS | WEFT__RW_WRITER)) == 0;
}

static inline uint32_t weft__rw_waiting_writers(uint64_t s)
{
    return (uint32_t)(s >> 32);
}

/* A checked wait: the lock as the check layer knows it, the kind of hold
 * wanted, and when the first sleep began (0: not yet) and the next
 * wait-for walk is due. */
typedef struct weft__rw_ck {
    weft__ck_lock_t cl;
    unsigned flags;
    uint64_t start, next;
} weft__rw_ck_t;

static const char *weft__rw_name(const weft_rwlock_t *rw)
{
    return rw->_name != NULL ? rw->_name : "(unnamed)";
}

static inline uint32_t weft__rw_owner(const weft_rwlock_t *rw)
{
    /* Relaxed: only the writer stores its own tid here, so a thread reads
     * its own tid only if it wrote it itself, and program order suffices. */
    return __atomic_load_n(&rw->_owner, __ATOMIC_RELAXED);
}

static inline uint64_t weft__rw_load(const weft_rwlock_t *rw)
{
    /* Relaxed: every decision made on it is confirmed by a CAS. */
    return __atomic_load_n(&rw->_state, __ATOMIC_RELAXED);
}

static bool weft__rw_checking(void)
{
    return (__atomic_load_n(&weft__instr, __ATOMIC_RELAXED) & WEFT__INSTR_CHECK) != 0;
}

int weft_rwlock_init(weft_rwlock_t *rw, const char *name)
{
    if (rw == NULL)
        return -EINVAL;
    rw->_state = 0;
    rw->_rseq = 0;
    rw->_wseq = 0;
    rw->_owner = 0;
    rw->_rwaiting = 0;
    rw->_name = name;
    rw->_check = NULL;
    if (WEFT__INSTRUMENTED()) {
        weft__ann_lock_create(rw, &rw->_state, WEFT__RW_WORDS, WEFT__ANN_RWLOCK);
        if (weft__rw_checking()) {
            weft__ck_lock_t cl = {rw, name, WEFT__LK_RWLOCK};
            weft__check_lock_new(&cl);
        }
    }
    return 0;
}

int weft_rwlock_destroy(weft_rwlock_t *rw)
{
    if (rw == NULL)
        return -EINVAL;
    /* Acquire: pairs with the release CAS of the last unlock, so the last
     * holder's writes are visible before the memory is reused. RSLEEP is
     * never set in a free state (only in one where readers must wait). */
    if (__atomic_load_n(&rw->_state, __ATOMIC_ACQUIRE) != 0 ||
        __atomic_load_n(&rw->_rwaiting, __ATOMIC_RELAXED) != 0)
        return -EBUSY;
    if (WEFT__INSTRUMENTED()) {
        weft__ann_lock_destroy(rw, WEFT__ANN_RWLOCK);
        if (weft__rw_checking()) {
            weft__ck_lock_t cl = {rw, rw->_name, WEFT__LK_RWLOCK};
            weft__check_lock_destroy(&cl, false);
        }
    }
    return 0;
}

/* ---- taking the lock ------------------------------------------------------ */

/* Join the readers while the state (*s, kept current) is readable. */
static inline bool weft__rw_tryrd(weft_rwlock_t *rw, uint64_t *s)
{
    while (weft__rw_readable(*s)) {
        /* Acquire: pairs with the release CAS in the write unlock, so the
         * last writer's critical section happens-before ours. */
        if (__atomic_compare_exchange_n(&rw->_state, s, *s + 1, true, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return true;
    }
    return false;
}

/* Take the write lock while the state (*s, kept current) is writable;
 * `registered` is WEFT__RW_WW for a writer counted in WW, which leaves the
 * count in the same CAS, else 0. */
static inline bool weft__rw_trywr(weft_rwlock_t *rw, uint64_t *s, uint64_t registered, uint32_t tid)
{
    while (weft__rw_writable(*s)) {
        /* Acquire: pairs with the release CAS of the previous unlock (read
         * or write), so every earlier critical section happens-before ours. */
        if (__atomic_compare_exchange_n(&rw->_state, s, (*s | WEFT__RW_WRITER) - registered, true,
                                        __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            __atomic_store_n(&rw->_owner, tid, __ATOMIC_RELAXED);
            return true;
        }
    }
    return false;
}

static inline bool weft__rw_rdlock_fast(weft_rwlock_t *rw)
{
    uint64_t s = weft__rw_load(rw);
    return weft__rw_tryrd(rw, &s);
}

static inline bool weft__rw_wrlock_fast(weft_rwlock_t *rw, uint32_t tid)
{
    uint64_t s = weft__rw_load(rw);
    return weft__rw_trywr(rw, &s, 0, tid);
}

/* Readers are woken all at once: every one of them may enter. */
static void weft__rw_wake_readers(weft_rwlock_t *rw)
{
    /* Release: orders our state CAS before the bump, for the message
     * passing argument at the top (pairs with the acquire load of _rseq in
     * weft__rw_rdpark()). */
    __atomic_fetch_add(&rw->_rseq, 1, __ATOMIC_RELEASE);
    weft__futex_wake(&rw->_rseq, INT_MAX);
}

/* Writers are woken one at a time: only one of them can enter. */
static void weft__rw_wake_writer(weft_rwlock_t *rw)
{
    /* Release: as above; pairs with the acquire load in weft__rw_wrpark(). */
    __atomic_fetch_add(&rw->_wseq, 1, __ATOMIC_RELEASE);
    weft__futex_wake(&rw->_wseq, 1);
}

/*
 * One sleep on a sequence word. Unchecked (ck == NULL): until woken or d.
 * Checked: at most until the next walk is due (or d, if sooner), then the
 * walk. Returns 0 (re-check the state), -ETIMEDOUT (d passed) or -EDEADLK.
 */
static int weft__rw_sleep(uint32_t *word, uint32_t val, const weft__deadline_t *d,
                          weft__rw_ck_t *ck)
{
    if (ck == NULL)
        return weft__futex_wait(word, val, d) == -ETIMEDOUT ? -ETIMEDOUT : 0;
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
    if (weft__futex_wait(word, val, last ? d : &slice) == -ETIMEDOUT && last)
        return -ETIMEDOUT;
    now = weft__now_ns();
    if (now < ck->next)
        return 0;
    ck->next = now + WEFT__CHECK_SLICE_NS;
    return weft__check_blocked(&ck->cl, ck->flags, now - ck->start) == -EDEADLK ? -EDEADLK : 0;
}

/*
 * Sleep until the read lock is ours, the deadline passes or the check layer
 * finds a deadlock. A reader is not counted in the state while it waits: it
 * only sets RSLEEP, and when it gives up it simply goes (readers are woken
 * all at once, so it swallows no one else's wake-up).
 */
static int weft__rw_rdpark(weft_rwlock_t *rw, const weft__deadline_t *d, weft__rw_ck_t *ck)
{
    int r = 0;
    for (;;) {
        /* Acquire: pairs with the release bump in weft__rw_wake_readers(). */
        uint32_t seq = __atomic_load_n(&rw->_rseq, __ATOMIC_ACQUIRE);
        uint64_t s = weft__rw_load(rw);
        if (weft__rw_tryrd(rw, &s))
            return 0;
        if (weft__unlikely((s & (WEFT__RW_WRITER | WEFT__RW_WW_MASK)) == 0))
            weft__fatal("rwlock '%s' (%p): too many readers", weft__rw_name(rw), (void *)rw);
        if (r != 0)
            return r; /* after one last attempt */
        /* Relaxed: the mark publishes nothing; its place in the state's
         * modification order, before the CAS that frees the lock, is what
         * makes that CAS see it. */
        if (!(s & WEFT__RW_RSLEEP) &&
            !__atomic_compare_exchange_n(&rw->_state, &s, s | WEFT__RW_RSLEEP, false,
                                         __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            continue;
        r = weft__rw_sleep(&rw->_rseq, seq, d, ck);
    }
}

/* A waiting writer whose deadline passed: take the lock if it is writable,
 * else leave WW, and if we were the last waiting writer and the lock is
 * readable, let in the readers we were holding back. */
static int weft__rw_wrleave(weft_rwlock_t *rw, uint32_t tid)
{
    uint64_t s = weft__rw_load(rw);
    uint64_t n;
    do {
        if (weft__rw_trywr(rw, &s, WEFT__RW_WW, tid))
            return 0;
        n = s - WEFT__RW_WW;
        if ((n & (WEFT__RW_WRITER | WEFT__RW_WW_MASK)) == 0)
            n &= ~WEFT__RW_RSLEEP;
        /* Relaxed: leaving publishes nothing; the readers' wake-up is
         * ordered by the release bump in weft__rw_wake_readers(). */
    } while (
        !__atomic_compare_exchange_n(&rw->_state, &s, n, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    if ((s & WEFT__RW_RSLEEP) && !(n & WEFT__RW_RSLEEP))
        weft__rw_wake_readers(rw);
    return -ETIMEDOUT;
}

/* Sleep until the write lock is ours, the deadline passes or the check
 * layer finds a deadlock. The caller is counted in WW; see the missed
 * wake-up argument at the top of the file. */
static int weft__rw_wrpark(weft_rwlock_t *rw, uint32_t tid, const weft__deadline_t *d,
                           weft__rw_ck_t *ck)
{
    for (;;) {
        /* Acquire: pairs with the release bump in weft__rw_wake_writer(). */
        uint32_t seq = __atomic_load_n(&rw->_wseq, __ATOMIC_ACQUIRE);
        uint64_t s = weft__rw_load(rw);
        if (weft__rw_trywr(rw, &s, WEFT__RW_WW, tid))
            return 0;
        int r = weft__rw_sleep(&rw->_wseq, seq, d, ck);
        if (r != 0)
            return weft__rw_wrleave(rw, tid) == 0 ? 0 : r;
    }
}

/* Count ourselves in WW, unless the lock became writable: one CAS decides,
 * so an unlock either sees us counted or we see it free. */
static bool weft__rw_wrregister(weft_rwlock_t *rw, uint32_t tid)
{
    uint64_t s = weft__rw_load(rw);
    for (;;) {
        if (weft__rw_trywr(rw, &s, 0, tid))
            return true;
        /* Relaxed: registering publishes nothing (see weft__rw_rdpark()). */
        if (__atomic_compare_exchange_n(&rw->_state, &s, s + WEFT__RW_WW, true, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
            return false;
    }
}

static inline bool weft__rw_expired(const weft__deadline_t *d)
{
    return d != NULL && !d->forever && weft__deadline_passed(d);
}

/* The contended read path. -EDEADLK if the caller holds the write lock. */
static WEFT__COLD int weft__rw_rdlock_slow(weft_rwlock_t *rw, uint32_t tid,
                                           const weft__deadline_t *d, weft__rw_ck_t *ck)
{
    if (weft__rw_owner(rw) == tid)
        return -EDEADLK;
    if (weft__rw_expired(d))
        return weft__rw_rdlock_fast(rw) ? 0 : -ETIMEDOUT;
    for (unsigned i = 0; i < WEFT__RW_SPIN; i++) {
        weft__cpu_relax();
        if (weft__rw_rdlock_fast(rw))
            return 0;
    }
    /* Relaxed: the count only lets weft_rwlock_destroy() say -EBUSY. */
    __atomic_fetch_add(&rw->_rwaiting, 1, __ATOMIC_RELAXED);
    int r = weft__rw_rdpark(rw, d, ck);
    __atomic_fetch_sub(&rw->_rwaiting, 1, __ATOMIC_RELAXED);
    return r;
}

/* The contended write path. -EDEADLK if the caller holds the write lock. */
static WEFT__COLD int weft__rw_wrlock_slow(weft_rwlock_t *rw, uint32_t tid,
                                           const weft__deadline_t *d, weft__rw_ck_t *ck)
{
    if (weft__rw_owner(rw) == tid)
        return -EDEADLK;
    if (weft__rw_expired(d))
        return weft__rw_wrlock_fast(rw, tid) ? 0 : -ETIMEDOUT;
    for (unsigned i = 0; i < WEFT__RW_SPIN; i++) {
        weft__cpu_relax();
        if (weft__rw_wrlock_fast(rw, tid))
            return 0;
    }
    if (weft__rw_wrregister(rw, tid))
        return 0;
    return weft__rw_wrpark(rw, tid, d, ck);
}

static int weft__rw_lock(weft_rwlock_t *rw, uint32_t tid, const weft__deadline_t *d, bool write,
                         weft__rw_ck_t *ck)
{
    if (write)
        return weft__rw_wrlock_fast(rw, tid) ? 0 : weft__rw_wrlock_slow(rw, tid, d, ck);
    return weft__rw_rdlock_fast(rw) ? 0 : weft__rw_rdlock_slow(rw, tid, d, ck);
}

static WEFT__COLD void weft__rw_self_deadlock(const weft_rwlock_t *rw, const char *what)
{
    weft__fatal("deadlock: thread %u %s rwlock '%s' (%p) that it already holds for writing",
                weft__tid(), what, weft__rw_name(rw), (const void *)rw);
}

/* Check-layer flags for annotation flags. `is_try`: cannot block. */
static unsigned weft__rw_ckflags(unsigned flags, bool is_try)
{
    return ((flags & WEFT__ANN_READ) ? WEFT__CK_READ : 0) | (is_try ? WEFT__CK_TRY : 0);
}

/*
 * Locking with annotations for TSan/Helgrind and the check layer (order
 * edges, held locks, ownership, and sliced sleeps for the wait-for walk).
 * Timed calls can block, so for the check layer they are not try-locks.
 * -EDEADLK: the caller holds the write lock, or a wait-for cycle was found.
 */
static WEFT__COLD int weft__rw_lock_instr(weft_rwlock_t *rw, uint32_t tid,
                                          const weft__deadline_t *d, unsigned flags, void *site)
{
    flags |= WEFT__ANN_RWLOCK;
    weft__rw_ck_t ckw = {{rw, rw->_name, WEFT__LK_RWLOCK}, weft__rw_ckflags(flags, false), 0, 0};
    weft__rw_ck_t *ck = weft__rw_checking() ? &ckw : NULL;
    if (ck != NULL && weft__rw_owner(rw) == tid) {
        weft__check_self_deadlock(&ckw.cl, site);
        return -EDEADLK;
    }
    if (ck != NULL)
        weft__check_acquire_pre(&ckw.cl, ckw.flags, site);
    weft__ann_pre_lock(rw, &rw->_state, WEFT__RW_WORDS, flags);
    int r = weft__rw_lock(rw, tid, d, !(flags & WEFT__ANN_READ), ck);
    weft__ann_post_lock(rw, r == 0 ? flags : flags | WEFT__ANN_FAILED);
    if (ck != NULL)
        weft__check_acquire_post(&ckw.cl, ckw.flags, r == 0, site);
    return r;
}

/* An untimed lock failed with -EDEADLK. With checking on it was reported:
 * stop rather than hang (or, with WEFT_CHECK_ON_DEADLOCK=wait, wait on
 * unchecked). A lock already held for writing is fatal either way. */
static WEFT__COLD void weft__rw_lock_failed(weft_rwlock_t *rw, uint32_t tid, bool write)
{
    if (weft__rw_checking()) {
        weft__check_stop_hang();
        if (weft__rw_lock(rw, tid, NULL, write, NULL) == 0)
            return;
    }
    weft__rw_self_deadlock(rw, write ? "write-locked" : "read-locked");
}

WEFT__RW_API void weft_rwlock_rdlock(weft_rwlock_t *rw)
{
    if (weft__unlikely(rw == NULL))
        weft__fatal("weft_rwlock_rdlock: NULL rwlock");
    int r;
    if (WEFT__INSTRUMENTED())
        r = weft__rw_lock_instr(rw, weft__tid(), NULL, WEFT__ANN_READ,
                                __builtin_return_address(0));
    else if (weft__likely(weft__rw_rdlock_fast(rw)))
        return;
    else
        r = weft__rw_rdlock_slow(rw, weft__tid(), NULL, NULL);
    if (weft__unlikely(r != 0))
        weft__rw_lock_failed(rw, weft__tid(), false);
}

WEFT__RW_API void weft_rwlock_wrlock(weft_rwlock_t *rw)
{
    if (weft__unlikely(rw == NULL))
        weft__fatal("weft_rwlock_wrlock: NULL rwlock");
    uint32_t tid = weft__tid();
    int r;
    if (WEFT__INSTRUMENTED())
        r = weft__rw_lock_instr(rw, tid, NULL, 0, __builtin_return_address(0));
    else if (weft__likely(weft__rw_wrlock_fast(rw, tid)))
        return;
    else
        r = weft__rw_wrlock_slow(rw, tid, NULL, NULL);
    if (weft__unlikely(r != 0))
        weft__rw_lock_failed(rw, tid, true);
}

/* The try variants: one attempt, annotated when instrumented. */
static int weft__rw_trylock(weft_rwlock_t *rw, bool write, void *site)
{
    if (rw == NULL)
        return -EINVAL;
    uint32_t tid = weft__tid();
    if (!WEFT__INSTRUMENTED())
        return (write ? weft__rw_wrlock_fast(rw, tid) : weft__rw_rdlock_fast(rw)) ? 0 : -EBUSY;
    unsigned flags = WEFT__ANN_RWLOCK | WEFT__ANN_TRY | (write ? 0 : WEFT__ANN_READ);
    weft__ann_pre_lock(rw, &rw->_state, WEFT__RW_WORDS, flags);
    bool ok = write ? weft__rw_wrlock_fast(rw, tid) : weft__rw_rdlock_fast(rw);
    weft__ann_post_lock(rw, ok ? flags : flags | WEFT__ANN_FAILED);
    if (ok && weft__rw_checking()) {
        weft__ck_lock_t cl = {rw, rw->_name, WEFT__LK_RWLOCK};
        weft__check_acquired(&cl, weft__rw_ckflags(flags, true), site);
    }
    return ok ? 0 : -EBUSY;
}

WEFT__RW_API int weft_rwlock_tryrdlock(weft_rwlock_t *rw)
{
    return weft__rw_trylock(rw, false, __builtin_return_address(0));
}

WEFT__RW_API int weft_rwlock_trywrlock(weft_rwlock_t *rw)
{
    return weft__rw_trylock(rw, true, __builtin_return_address(0));
}

/* The timed variants: a fast attempt, then the slow path with a deadline. */
static int weft__rw_timedlock(weft_rwlock_t *rw, int64_t timeout_ns, bool write, void *site)
{
    if (rw == NULL || !weft__timeout_valid(timeout_ns))
        return -EINVAL;
    uint32_t tid = weft__tid();
    bool instr = WEFT__INSTRUMENTED();
    if (!instr && (write ? weft__rw_wrlock_fast(rw, tid) : weft__rw_rdlock_fast(rw)))
        return 0;
    weft__deadline_t d;
    (void)weft__deadline_init(&d, timeout_ns);
    if (instr)
        return weft__rw_lock_instr(rw, tid, &d, WEFT__ANN_TRY | (write ? 0 : WEFT__ANN_READ),
                                   site);
    return write ? weft__rw_wrlock_slow(rw, tid, &d, NULL)
                 : weft__rw_rdlock_slow(rw, tid, &d, NULL);
}

WEFT__RW_API int weft_rwlock_timedrdlock(weft_rwlock_t *rw, int64_t timeout_ns)
{
    return weft__rw_timedlock(rw, timeout_ns, false, __builtin_return_address(0));
}

WEFT__RW_API int weft_rwlock_timedwrlock(weft_rwlock_t *rw, int64_t timeout_ns)
{
    return weft__rw_timedlock(rw, timeout_ns, true, __builtin_return_address(0));
}

/* ---- releasing it --------------------------------------------------------- */

/* Release the write lock the caller holds. */
static void weft__rw_wrunlock(weft_rwlock_t *rw)
{
    __atomic_store_n(&rw->_owner, 0, __ATOMIC_RELAXED);
    uint64_t s = WEFT__RW_WRITER;
    /* Release: pairs with the acquire CAS of the next holder, reader or
     * writer (weft__rw_tryrd, weft__rw_trywr). */
    if (__atomic_compare_exchange_n(&rw->_state, &s, 0, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        return;
    uint64_t n;
    do {
        n = s & ~WEFT__RW_WRITER;
        if (weft__rw_waiting_writers(s) == 0)
            n &= ~WEFT__RW_RSLEEP;
        /* Release: as above. */
    } while (
        !__atomic_compare_exchange_n(&rw->_state, &s, n, true, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
    /* Writer preference: while writers wait, readers stay asleep. */
    if (weft__rw_waiting_writers(s) != 0)
        weft__rw_wake_writer(rw);
    else if (s & WEFT__RW_RSLEEP)
        weft__rw_wake_readers(rw);
}

/* Release one read hold, starting from the caller's view s of the state.
 * -EPERM (nothing changes) if the lock is write-held or not held. */
static int weft__rw_rdunlock(weft_rwlock_t *rw, uint64_t s)
{
    do {
        if ((s & WEFT__RW_WRITER) || (s & WEFT__RW_READERS) == 0)
            return -EPERM;
        /* Release: pairs with the acquire CAS in weft__rw_trywr(), so our
         * reads happen-before the next writer's writes. */
    } while (!__atomic_compare_exchange_n(&rw->_state, &s, s - 1, true, __ATOMIC_RELEASE,
                                          __ATOMIC_RELAXED));
    if ((s & WEFT__RW_READERS) == 1 && weft__rw_waiting_writers(s) != 0)
        weft__rw_wake_writer(rw);
    return 0;
}

/*
 * Which hold does the caller release? The state tells, without the owner in
 * most cases: when WRITER is clear the caller cannot be the writer, so it is
 * a read release; when it is set, it is a write release only for the owner
 * (a thread that wrote WRITER itself sees it, by coherence). Returns 1 for
 * write, 0 for read, -EPERM for neither.
 */
static inline int weft__rw_release_kind(const weft_rwlock_t *rw, uint64_t s)
{
    if (!(s & WEFT__RW_WRITER))
        return (s & WEFT__RW_READERS) != 0 ? 0 : -EPERM;
    return weft__rw_owner(rw) == weft__tid() ? 1 : -EPERM;
}

static WEFT__COLD int weft__rw_unlock_instr(weft_rwlock_t *rw, uint64_t s, int kind, void *site)
{
    unsigned flags = WEFT__ANN_RWLOCK | (kind ? 0 : WEFT__ANN_READ);
    if (weft__rw_checking()) {
        weft__ck_lock_t cl = {rw, rw->_name, WEFT__LK_RWLOCK};
        (void)weft__check_release(&cl, kind ? 0 : WEFT__CK_READ, site);
    }
    weft__ann_pre_unlock(rw, flags);
    int r = 0;
    if (kind)
        weft__rw_wrunlock(rw);
    else
        r = weft__rw_rdunlock(rw, s);
    weft__ann_post_unlock(rw, flags);
    return r;
}

WEFT__RW_API int weft_rwlock_unlock(weft_rwlock_t *rw)
{
    if (rw == NULL)
        return -EINVAL;
    uint64_t s = weft__rw_load(rw);
    int kind = weft__rw_release_kind(rw, s);
    if (kind < 0) {
        if (WEFT__INSTRUMENTED() && weft__rw_checking()) {
            weft__ck_lock_t cl = {rw, rw->_name, WEFT__LK_RWLOCK};
            (void)weft__check_release(&cl, 0, __builtin_return_address(0));
        }
        return kind;
    }
    if (WEFT__INSTRUMENTED())
        return weft__rw_unlock_instr(rw, s, kind, __builtin_return_address(0));
    if (kind) {
        weft__rw_wrunlock(rw);
        return 0;
    }
    return weft__rw_rdunlock(rw, s);
}
