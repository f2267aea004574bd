/*
 * future.c - weft_future_t: the result of one submitted task, and the
 * detection of pool-induced deadlock.
 *
 * DESIGN
 * A future is a small reference-counted object: one reference for the
 * submitter (dropped by weft_future_release) and one for the queue entry
 * (dropped by the worker that pops the entry, whether it runs the task or
 * finds it cancelled or already run inline). Its state word (see
 * internal/exec.h) is also the futex waiters sleep on.
 *
 * Deadlock detection. A worker about to wait on a future of its own pool
 * registers the future in its `waiting_on` slot under pool->dl_mu and, in
 * the same critical section, checks whether every worker of the pool is now
 * stuck: waiting on a future that is QUEUED (nobody is free to start it), or
 * RUNNING on a worker that is itself stuck (following that chain, a cycle
 * counts as stuck). Registrations change only under dl_mu, so the check sees
 * a consistent set; a stuck worker stays stuck until an outside thread
 * cancels a future, so the last worker to block sees the whole deadlock and
 * its wait returns -EDEADLK instead of sleeping. Only waits by a pool's own
 * workers on the same pool's futures take part; waits from other threads and
 * across pools are not tracked.
 *
 * Inline mode (wait_runs_inline): a worker waiting on a QUEUED future of its
 * own pool claims it (QUEUED -> RUNNING) and runs it itself; the queue entry
 * is skipped later.
 */
#include <limits.h>
#include <stdlib.h>

#include "internal/exec.h"
#include "internal/instrument.h"

#define WEFT__WAIT_SPIN_NS 20000u /* how long a waiter spins before sleeping */

weft_future_t *weft__future_new(weft_pool_t *pool, const weft__task_t *t, uint32_t refs)
{
    weft_future_t *f = malloc(sizeof *f);
    if (f == NULL)
        return NULL;
    f->state = WEFT__F_QUEUED;
    f->refs = refs;
    f->waiters = 0;
    f->runner = 0;
    f->result = NULL;
    f->pool = pool;
    f->fn = t->fn;
    f->arg = t->arg;
    f->site = t->site;
    return f;
}

void weft__future_unref(weft_future_t *f)
{
    /* Release/acquire: every use of f by the other holder happens before
     * the free by whichever drops the last reference. */
    if (__atomic_fetch_sub(&f->refs, 1, __ATOMIC_ACQ_REL) == 1)
        free(f);
}

bool weft__future_claim(weft_future_t *f, unsigned runner)
{
    uint32_t s = WEFT__F_QUEUED;
    /* Acquire: pairs with the release in weft_future_cancel() only in the
     * failing case, where nothing is read; relaxed would do, but claim
     * starts the task, and acquire keeps the submitter's writes to fn's
     * argument visible even for a future handed to an inline waiter. */
    if (!__atomic_compare_exchange_n(&f->state, &s, WEFT__F_RUNNING, false, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED))
        return false;
    __atomic_store_n(&f->runner, runner, __ATOMIC_RELAXED);
    return true;
}

/* Publish a final state and wake the sleepers.
 *  completer (here)                 waiter (weft__future_sleep)
 *  [W] state = final  seq_cst       [W] waiters += 1  seq_cst
 *  [R] waiters        seq_cst       [R] state         seq_cst
 * Either we see the waiter and wake it, or it sees the final state and does
 * not sleep; futex_wait also refuses to sleep once state has changed. */
static void weft__future_finish(weft_future_t *f, uint32_t state)
{
    __atomic_store_n(&f->state, state, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&f->waiters, __ATOMIC_SEQ_CST) != 0)
        weft__futex_wake(&f->state, INT_MAX);
}

void weft__future_complete(weft_future_t *f, void *result)
{
    f->result = result; /* published by the seq_cst (release) store of DONE */
    __atomic_store_n(&f->runner, 0, __ATOMIC_RELAXED);
    weft__future_finish(f, WEFT__F_DONE);
}

int weft_future_cancel(weft_future_t *f)
{
    if (f == NULL)
        return -EINVAL;
    uint32_t s = WEFT__F_QUEUED;
    if (!__atomic_compare_exchange_n(&f->state, &s, WEFT__F_CANCELLED, false, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED))
        return s == WEFT__F_CANCELLED ? 0 : -EBUSY;
    __atomic_fetch_add(&f->pool->cancelled, 1, __ATOMIC_RELAXED);
    weft__future_finish(f, WEFT__F_CANCELLED);
    return 0;
}

bool weft_future_ready(const weft_future_t *f)
{
    return f != NULL && __atomic_load_n(&f->state, __ATOMIC_ACQUIRE) >= WEFT__F_DONE;
}

void weft_future_release(weft_future_t *f)
{
    if (f != NULL)
        weft__future_unref(f);
}

/* ---- deadlock detection --------------------------------------------------- */

/* Is worker i stuck? Follows waits on RUNNING futures to their runners. */
static bool weft__worker_stuck(weft_pool_t *pool, unsigned i) WEFT_REQUIRES(pool->dl_mu)
{
    for (unsigned hops = 0; hops <= pool->nthreads; hops++) {
        const weft_future_t *f = pool->workers[i].waiting_on;
        if (f == NULL)
            return false;
        uint32_t s = __atomic_load_n(&f->state, __ATOMIC_ACQUIRE);
        if (s == WEFT__F_QUEUED)
            return true;
        unsigned r = __atomic_load_n(&f->runner, __ATOMIC_RELAXED);
        if (s != WEFT__F_RUNNING || r == 0)
            return false; /* done, cancelled, or run by a thread outside the pool */
        i = r - 1;
    }
    return true; /* a cycle of workers waiting on each other's running tasks */
}

/* Does the chain of waits from worker i lead back to i (it waits, directly
 * or through other workers, on a task that it is itself running)? Such a
 * wait can never end, whatever the other workers do. */
static bool weft__wait_cycle(weft_pool_t *pool, unsigned i) WEFT_REQUIRES(pool->dl_mu)
{
    unsigned at = i;
    for (unsigned hops = 0; hops <= pool->nthreads; hops++) {
        const weft_future_t *f = pool->workers[at].waiting_on;
        if (f == NULL || __atomic_load_n(&f->state, __ATOMIC_ACQUIRE) != WEFT__F_RUNNING)
            return false;
        unsigned r = __atomic_load_n(&f->runner, __ATOMIC_RELAXED);
        if (r == 0)
            return false;
        if (r - 1 == i)
            return true;
        at = r - 1;
    }
    return false;
}

static bool weft__pool_deadlocked(weft_pool_t *pool) WEFT_REQUIRES(pool->dl_mu)
{
    for (unsigned i = 0; i < pool->nthreads; i++)
        if (!weft__worker_stuck(pool, i))
            return false;
    return true;
}

/* Register w as waiting on f; -EDEADLK (not registered) if that closes a
 * wait-for cycle or completes a pool-wide deadlock. */
static int weft__wait_register(weft__worker_t *w, weft_future_t *f)
{
    weft_pool_t *pool = w->pool;
    int r = 0;
    weft_mutex_lock(&pool->dl_mu);
    w->waiting_on = f;
    bool cycle = weft__wait_cycle(pool, w->index);
    if (cycle || weft__pool_deadlocked(pool)) {
        __atomic_fetch_add(&pool->deadlocks, 1, __ATOMIC_RELAXED);
        /* WEFT_CHECK at creation, or the check layer switched on since. */
        if (pool->report ||
            (__atomic_load_n(&weft__instr, __ATOMIC_RELAXED) & WEFT__INSTR_CHECK) != 0)
            weft__pool_deadlock_report(pool, w, f, cycle);
        w->waiting_on = NULL;
        r = -EDEADLK;
    }
    weft_mutex_unlock(&pool->dl_mu);
    return r;
}

static void weft__wait_unregister(weft__worker_t *w)
{
    weft_mutex_lock(&w->pool->dl_mu);
    w->waiting_on = NULL;
    weft_mutex_unlock(&w->pool->dl_mu);
}

/* ---- waiting -------------------------------------------------------------- */

/* Claim a queued future of the caller's pool and run it here. */
static bool weft__future_run_inline(weft__worker_t *w, weft_future_t *f)
{
    if (!weft__future_claim(f, w->index + 1))
        return false;
    weft__task_t t = {f->fn, f->arg, f, f->site, 0};
    weft__pool_run(f->pool, &t);
    __atomic_store_n(&w->inline_runs, w->inline_runs + 1, __ATOMIC_RELAXED);
    return true;
}

/* Spin for a short while: most tasks awaited right after submit finish
 * sooner than a sleep and wake-up would take. */
static uint32_t weft__future_spin(const weft_future_t *f, int64_t timeout_ns)
{
    uint64_t limit = WEFT__WAIT_SPIN_NS;
    if (timeout_ns != WEFT_FOREVER && (uint64_t)timeout_ns < limit)
        limit = (uint64_t)timeout_ns;
    uint64_t start = weft__now_ns(), spun = 0;
    for (unsigned i = 1;; i++) {
        uint32_t s = __atomic_load_n(&f->state, __ATOMIC_ACQUIRE);
        if (s >= WEFT__F_DONE)
            return s;
        if ((i & 7) == 0 && (spun = weft__now_ns() - start) >= limit)
            return s;
        weft__spin_step(spun);
    }
}

/* Sleep until f is final or the deadline. The other column of
 * weft__future_finish()'s diagram. Returns the state or -ETIMEDOUT. */
static int weft__future_sleep(weft_future_t *f, const weft__deadline_t *d)
{
    for (;;) {
        __atomic_fetch_add(&f->waiters, 1, __ATOMIC_SEQ_CST);
        uint32_t s = __atomic_load_n(&f->state, __ATOMIC_SEQ_CST);
        int r = 0;
        if (s < WEFT__F_DONE)
            r = weft__futex_wait(&f->state, s, d);
        __atomic_fetch_sub(&f->waiters, 1, __ATOMIC_RELAXED);
        if (s >= WEFT__F_DONE)
            return (int)s;
        if (r == -ETIMEDOUT)
            return -ETIMEDOUT;
    }
}

/* The slow path of weft_future_wait: the state is not final yet. */
static int weft__future_block(weft_future_t *f, int64_t timeout_ns)
{
    weft__worker_t *w = weft__self;
    bool own = w != NULL && w->pool == f->pool;
    if (own && f->pool->inline_wait && weft__future_run_inline(w, f))
        return WEFT__F_DONE;
    uint32_t s = weft__future_spin(f, timeout_ns);
    if (s >= WEFT__F_DONE)
        return (int)s;
    if (timeout_ns == 0)
        return -ETIMEDOUT;
    weft__deadline_t d;
    (void)weft__deadline_init(&d, timeout_ns);
    if (own) {
        int r = weft__wait_register(w, f);
        if (r != 0)
            return r;
    }
    int r = weft__future_sleep(f, &d);
    if (own)
        weft__wait_unregister(w);
    return r;
}

int weft_future_wait(weft_future_t *f, int64_t timeout_ns, void **result)
{
    if (f == NULL || !weft__timeout_valid(timeout_ns))
        return -EINVAL;
    /* Acquire: pairs with the release of DONE in weft__future_finish(), so
     * the result (and everything the task wrote) is visible. */
    int s = (int)__atomic_load_n(&f->state, __ATOMIC_ACQUIRE);
    if (s < WEFT__F_DONE)
        s = weft__future_block(f, timeout_ns);
    if (s < 0)
        return s;
    if (s == WEFT__F_CANCELLED)
        return -ECANCELED;
    if (result != NULL)
        *result = f->result;
    return 0;
}
