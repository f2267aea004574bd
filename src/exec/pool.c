/*
 * pool.c - weft_pool_t: a thread pool with per-worker work-stealing deques,
 * a shared injection queue, and spin-then-park idle workers.
 *
 * DESIGN
 * Queues. Each worker owns a Chase-Lev deque: it pushes and pops at the
 * bottom (LIFO, cache-warm), idle workers steal from the top (FIFO). Tasks
 * submitted by a worker of the pool go to its own deque. A thread outside
 * the pool gets a deque of its own on its first submit (it only pushes, the
 * workers only steal), so submitting takes no lock and shares no written
 * cache line with other submitters. When a deque is full, or more than
 * WEFT__EXT_MAX outside threads submit, tasks go to the shared ring under
 * `qmu`, from which a worker takes a batch at a time. Tasks travel by value
 * (five words); the only allocation per task is the future, and only when
 * the caller asks for one.
 *
 * Counting. No counter is shared by every submit: each queue's owner counts
 * the tasks it queued (`submitted`, before publishing them) and each worker
 * counts the tasks it finished. Once destroy has set `shutdown`, a worker
 * with nothing to do sums the finished counts and then the submitted counts;
 * since a task is counted as submitted before it can finish, equal sums
 * prove an instant with nothing queued or running (weft__all_done). Then no
 * task is left to submit more, and the workers exit: every task queued
 * before destroy, and every task those tasks queue, has run. Bounded pools
 * also count `queued` (not yet started) against the capacity.
 *
 * Idle workers. A worker that finds no work spins for WEFT__SPIN_NS (a
 * wake-up across CPUs costs far more than a short spin), then parks on the
 * eventcount `ec_seq`. Submitters wake a parked worker only when no worker
 * is spinning; a spinner that finds work while workers sleep and more work
 * is visible wakes one more, so parallelism ramps up without a wake-up per
 * task. See weft__notify() and weft__park() for the missed-wake-up argument.
 *
 * Promises: no task is lost or run twice; a task with a future runs at
 * most once (its state CAS decides between the worker, an inline waiter
 * and cancel); destroy runs everything queued before it, then joins.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "internal/exec.h"

#define WEFT__SPIN_NS 50000u /* how long an idle worker looks for work */
#define WEFT__BATCH_MAX 64u  /* most tasks moved from the shared ring at once */

__thread weft__worker_t *weft__self __attribute__((tls_model("initial-exec")));
int weft__exec_fault;

/* ---- task slots and the Chase-Lev deque ----------------------------------- */

/* Slots are copied word by word with relaxed atomics: a thief may read a
 * slot that the owner is overwriting, and then discards it (its CAS on top
 * fails), so the words must be atomic to keep that race well-defined. */
static void weft__slot_put(weft__slot_t *s, const weft__task_t *t)
{
    weft__slot_t v;
    memcpy(&v, t, sizeof v);
    for (int i = 0; i < WEFT__TASK_WORDS; i++)
        __atomic_store_n(&s->w[i], v.w[i], __ATOMIC_RELAXED);
}

static void weft__slot_get(weft__slot_t *s, weft__task_t *t)
{
    weft__slot_t v;
    for (int i = 0; i < WEFT__TASK_WORDS; i++)
        v.w[i] = __atomic_load_n(&s->w[i], __ATOMIC_RELAXED);
    memcpy(t, &v, sizeof v);
}

int weft__dq_init(weft__deque_t *q, unsigned capacity)
{
    q->top = 0;
    q->top_seen = 0;
    q->bottom = 0;
    q->mask = (int64_t)capacity - 1;
    q->slots = calloc(capacity, sizeof *q->slots);
    return q->slots != NULL ? 0 : -ENOMEM;
}

void weft__dq_free(weft__deque_t *q)
{
    free(q->slots);
    q->slots = NULL;
}

/* Owner only. False when full (the caller uses the shared ring instead). */
static bool weft__dq_push(weft__deque_t *q, const weft__task_t *t)
{
    int64_t b = __atomic_load_n(&q->bottom, __ATOMIC_RELAXED);
    /* top only grows, so an old value overstates how full we are: reload it
     * (a cache miss while thieves are busy) only when that says full.
     * Acquire: pairs with the thieves' CAS of top in weft__dq_steal(), so a
     * slot is overwritten only after the thief that took it has read it. */
    if (b - q->top_seen > q->mask) {
        q->top_seen = __atomic_load_n(&q->top, __ATOMIC_ACQUIRE);
        if (b - q->top_seen > q->mask)
            return false;
    }
    weft__slot_put(&q->slots[b & q->mask], t);
    /* Release: publishes the slot to the acquire load of bottom in
     * weft__dq_steal(). */
    __atomic_store_n(&q->bottom, b + 1, __ATOMIC_RELEASE);
    return true;
}

/* Owner only: take the newest task. */
static bool weft__dq_pop(weft__deque_t *q, weft__task_t *t)
{
    int64_t b = __atomic_load_n(&q->bottom, __ATOMIC_RELAXED) - 1;
    /*  owner (pop)                  thief (steal)
     *  [W] bottom = b   seq_cst     [R] top      seq_cst
     *  [R] top          seq_cst     [R] bottom   seq_cst
     * Either the thief sees the lowered bottom and leaves slot b alone, or
     * we see its raised top; when both go for the last task (top == b) the
     * CAS on top below decides. */
    __atomic_store_n(&q->bottom, b, __ATOMIC_SEQ_CST);
    int64_t top = __atomic_load_n(&q->top, __ATOMIC_SEQ_CST);
    if (top > b) {
        __atomic_store_n(&q->bottom, b + 1, __ATOMIC_RELAXED);
        return false;
    }
    weft__slot_get(&q->slots[b & q->mask], t);
    if (top < b)
        return true;
    bool won = __atomic_compare_exchange_n(&q->top, &top, top + 1, false, __ATOMIC_SEQ_CST,
                                           __ATOMIC_RELAXED);
    __atomic_store_n(&q->bottom, b + 1, __ATOMIC_RELAXED);
    return won;
}

/* Any thread: take the oldest task. 1 taken, 0 empty, -1 lost a race. */
static int weft__dq_steal(weft__deque_t *q, weft__task_t *t)
{
    int64_t top = __atomic_load_n(&q->top, __ATOMIC_SEQ_CST);
    /* seq_cst (so also acquire): the pair drawn in weft__dq_pop(), and the
     * slot contents published by weft__dq_push()'s release of bottom. */
    int64_t b = __atomic_load_n(&q->bottom, __ATOMIC_SEQ_CST);
    if (top >= b)
        return 0;
    weft__slot_get(&q->slots[top & q->mask], t);
    if (weft__unlikely(__atomic_load_n(&weft__exec_fault, __ATOMIC_RELAXED) != 0)) {
        weft__cpu_relax(); /* broken on purpose: a store where a CAS is needed */
        __atomic_store_n(&q->top, top + 1, __ATOMIC_SEQ_CST);
        return 1;
    }
    /* seq_cst: orders against weft__dq_pop()'s CAS for the last task. */
    if (!__atomic_compare_exchange_n(&q->top, &top, top + 1, false, __ATOMIC_SEQ_CST,
                                     __ATOMIC_RELAXED))
        return -1;
    return 1;
}

/* ---- the shared ring (under qmu) ------------------------------------------ */

static int weft__ring_grow(weft_pool_t *pool) WEFT_REQUIRES(pool->qmu)
{
    size_t ncap = pool->rcap ? pool->rcap * 2 : 256;
    weft__task_t *n = malloc(ncap * sizeof *n);
    if (n == NULL)
        return -ENOMEM;
    size_t count = __atomic_load_n(&pool->rcount, __ATOMIC_RELAXED);
    for (size_t i = 0; i < count; i++)
        n[i] = pool->ring[(pool->rhead + i) & (pool->rcap - 1)];
    free(pool->ring);
    pool->ring = n;
    pool->rcap = ncap;
    pool->rhead = 0;
    return 0;
}

/* Queue on the shared ring. Outsiders get -ESHUTDOWN once destroy began;
 * the pool's own workers may still queue (their tasks run before exit). */
static int weft__ring_push(weft_pool_t *pool, const weft__task_t *t, bool own)
{
    int r = 0;
    weft_mutex_lock(&pool->qmu);
    size_t count = __atomic_load_n(&pool->rcount, __ATOMIC_RELAXED);
    if (!own && __atomic_load_n(&pool->shutdown, __ATOMIC_RELAXED))
        r = -ESHUTDOWN;
    else if (count == pool->rcap)
        r = weft__ring_grow(pool);
    if (r == 0) {
        pool->ring[(pool->rhead + count) & (pool->rcap - 1)] = *t;
        /* The ring itself is published by qmu; rcount is read without the
         * lock only as a hint, ordered by the fences in weft__notify() and
         * weft__park(). ring_pushed: see weft__all_done(). */
        __atomic_store_n(&pool->rcount, count + 1, __ATOMIC_RELAXED);
        __atomic_store_n(&pool->ring_pushed, pool->ring_pushed + 1, __ATOMIC_RELEASE);
    }
    weft_mutex_unlock(&pool->qmu);
    return r;
}

/* Move this worker's share of the shared ring into its deque; the first
 * task goes to *t. */
static bool weft__ring_grab(weft__worker_t *w, weft__task_t *t)
{
    weft_pool_t *pool = w->pool;
    if (__atomic_load_n(&pool->rcount, __ATOMIC_RELAXED) == 0)
        return false;
    weft_mutex_lock(&pool->qmu);
    size_t count = __atomic_load_n(&pool->rcount, __ATOMIC_RELAXED);
    size_t take = count / pool->nthreads + 1;
    if (take > count)
        take = count;
    if (take > WEFT__BATCH_MAX)
        take = WEFT__BATCH_MAX;
    size_t mask = pool->rcap - 1;
    for (size_t i = 0; i < take; i++) {
        const weft__task_t *src = &pool->ring[(pool->rhead + i) & mask];
        if (i == 0)
            *t = *src;
        else if (!weft__dq_push(&w->dq, src))
            take = i; /* deque full: leave the rest on the ring */
    }
    pool->rhead = (pool->rhead + take) & mask;
    __atomic_store_n(&pool->rcount, count - take, __ATOMIC_RELAXED);
    weft_mutex_unlock(&pool->qmu);
    return take > 0;
}

/* ---- finding work, waking and parking ------------------------------------- */

/* Try a victim's deque a few times (a lost race is not an empty deque). */
static bool weft__steal_from(weft__deque_t *q, weft__task_t *t)
{
    for (int tries = 0; tries < 4; tries++) {
        int r = weft__dq_steal(q, t);
        if (r != -1)
            return r > 0;
    }
    return false;
}

/*
 * Take up to half (at most WEFT__BATCH_MAX) of the oldest tasks of an
 * outside submitter's deque in one CAS: the first goes to *t, the rest onto
 * the thief's own deque. Only for those deques: their owner never pops, so
 * the slots between top and bottom change only after top has moved past
 * them, which the CAS rules out (a worker's deque, whose owner pops, allows
 * single steals only). 1 taken, 0 empty, -1 lost a race.
 */
static int weft__dq_steal_batch(weft__deque_t *q, weft__worker_t *w, weft__task_t *t)
{
    int64_t top = __atomic_load_n(&q->top, __ATOMIC_SEQ_CST);
    /* Acquire: pairs with the release of bottom in weft__dq_push(). */
    int64_t avail = __atomic_load_n(&q->bottom, __ATOMIC_ACQUIRE) - top;
    if (avail <= 0)
        return 0;
    /* Our deque only shrinks under us (thieves), so this room is certain. */
    int64_t room = w->dq.mask + 1 - weft__dq_size(&w->dq);
    int64_t n = (avail + 1) / 2;
    if (n > (int64_t)WEFT__BATCH_MAX)
        n = WEFT__BATCH_MAX;
    if (n > room + 1)
        n = room + 1;
    weft__task_t batch[WEFT__BATCH_MAX];
    for (int64_t i = 0; i < n; i++)
        weft__slot_get(&q->slots[(top + i) & q->mask], &batch[i]);
    if (weft__unlikely(__atomic_load_n(&weft__exec_fault, __ATOMIC_RELAXED) != 0)) {
        weft__cpu_relax(); /* broken on purpose: a store where a CAS is needed */
        __atomic_store_n(&q->top, top + n, __ATOMIC_SEQ_CST);
    } else if (!__atomic_compare_exchange_n(&q->top, &top, top + n, false, __ATOMIC_SEQ_CST,
                                            __ATOMIC_RELAXED)) {
        return -1;
    }
    *t = batch[0];
    for (int64_t i = 1; i < n; i++)
        (void)weft__dq_push(&w->dq, &batch[i]);
    return 1;
}

static bool weft__steal_ext(weft__deque_t *q, weft__worker_t *w, weft__task_t *t)
{
    for (int tries = 0; tries < 4; tries++) {
        int r = weft__dq_steal_batch(q, w, t);
        if (r != -1)
            return r > 0;
    }
    return false;
}

/* Outside submitters' deques first (oldest work), then other workers'. */
static bool weft__steal_any(weft__worker_t *w, weft__task_t *t)
{
    weft_pool_t *pool = w->pool;
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    /* Acquire: pairs with the release in weft__ext_register(). */
    unsigned ne = __atomic_load_n(&pool->next_ext, __ATOMIC_ACQUIRE);
    unsigned start = (unsigned)(w->rng >> 32);
    for (unsigned k = 0; k < ne; k++)
        if (weft__steal_ext(&pool->exts[(start + k) % ne]->dq, w, t))
            return true;
    unsigned n = pool->nthreads;
    for (unsigned k = 0; k < n; k++) {
        weft__worker_t *v = &pool->workers[(start + k) % n];
        if (v != w && weft__steal_from(&v->dq, t)) {
            __atomic_store_n(&w->steals, w->steals + 1, __ATOMIC_RELAXED);
            return true;
        }
    }
    return false;
}

static bool weft__find(weft__worker_t *w, weft__task_t *t)
{
    return weft__dq_pop(&w->dq, t) || weft__steal_any(w, t) || weft__ring_grab(w, t);
}

/* Is there anything a worker could take? Called after a seq_cst fence. */
static bool weft__work_visible(weft_pool_t *pool)
{
    if (__atomic_load_n(&pool->rcount, __ATOMIC_RELAXED) != 0)
        return true;
    unsigned ne = __atomic_load_n(&pool->next_ext, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < ne; i++)
        if (weft__dq_size(&pool->exts[i]->dq) != 0)
            return true;
    for (unsigned i = 0; i < pool->nthreads; i++)
        if (weft__dq_size(&pool->workers[i].dq) != 0)
            return true;
    return false;
}

/*
 * True if at one instant every task ever queued had finished. Finished
 * counts are read first, submitted counts after: each count only grows, and
 * a task is counted as submitted (release) before it is published, so it is
 * counted as finished (release) only after that. With F(x), S(x) the true
 * totals at instant x between the two sweeps: sum(finished read) <= F(x) <=
 * S(x) <= sum(submitted read). Equal sums force F(x) == S(x).
 */
static bool weft__all_done(weft_pool_t *pool)
{
    uint64_t fin = 0, sub = 0;
    for (unsigned i = 0; i < pool->nthreads; i++)
        fin += __atomic_load_n(&pool->workers[i].finished, __ATOMIC_ACQUIRE);
    /* No fence needed: acquire loads are not reordered with later loads. */
    for (unsigned i = 0; i < pool->nthreads; i++)
        sub += __atomic_load_n(&pool->workers[i].submitted, __ATOMIC_ACQUIRE);
    unsigned ne = __atomic_load_n(&pool->next_ext, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < ne; i++)
        sub += __atomic_load_n(&pool->exts[i]->submitted, __ATOMIC_ACQUIRE);
    sub += __atomic_load_n(&pool->ring_pushed, __ATOMIC_ACQUIRE);
    return fin == sub;
}

static bool weft__should_exit(weft_pool_t *pool)
{
    return __atomic_load_n(&pool->shutdown, __ATOMIC_SEQ_CST) && weft__all_done(pool);
}

void weft__pool_wake(weft_pool_t *pool, int n)
{
    /* seq_cst: the bump is what weft__park()'s futex_wait compares against. */
    __atomic_fetch_add(&pool->ec_seq, 1, __ATOMIC_SEQ_CST);
    weft__futex_wake(&pool->ec_seq, n);
}

/*
 * After queueing a task: wake a parked worker unless one is spinning.
 *
 *  submitter (here)                 worker (weft__park)
 *  [W] bottom / rcount              [W] spinning -= 1, sleepers += 1
 *      seq_cst fence                    seq_cst fence
 *  [R] sleepers, spinning           [R] bottom / rcount (weft__work_visible)
 * Either our loads see the worker counted as asleep and not spinning, and
 * we bump ec_seq and wake it, or its re-check sees our task and it does not
 * sleep. A worker that read ec_seq before our bump gets EAGAIN from
 * futex_wait; one that read it after also sees the task (the bump is a
 * seq_cst RMW after the push).
 */
static void weft__notify(weft_pool_t *pool)
{
    weft__fence_seq_cst();
    if (__atomic_load_n(&pool->sleepers, __ATOMIC_RELAXED) == 0 ||
        __atomic_load_n(&pool->spinning, __ATOMIC_RELAXED) != 0)
        return;
    weft__pool_wake(pool, 1);
}

/* Sleep until woken. The other column of weft__notify()'s diagram. */
static void weft__park(weft__worker_t *w)
{
    weft_pool_t *pool = w->pool;
    __atomic_fetch_add(&pool->sleepers, 1, __ATOMIC_RELAXED);
    /* Acquire: pairs with the seq_cst bump in weft__pool_wake(). */
    uint32_t seq = __atomic_load_n(&pool->ec_seq, __ATOMIC_ACQUIRE);
    weft__fence_seq_cst();
    if (!weft__work_visible(pool) && !weft__should_exit(pool))
        (void)weft__futex_wait(&pool->ec_seq, seq, NULL);
    __atomic_fetch_sub(&pool->sleepers, 1, __ATOMIC_RELAXED);
}

/* Look for work for WEFT__SPIN_NS before parking. At most half the workers
 * (at least one) spin at a time, as in Go's scheduler: more spinners find
 * work no sooner, and on a busy machine they take CPU from the threads that
 * produce the work. The others look a few times and park. */
static bool weft__spin_for_work(weft__worker_t *w, weft__task_t *t)
{
    weft_pool_t *pool = w->pool;
    unsigned limit = pool->nthreads > 1 ? pool->nthreads / 2 : 1;
    uint64_t budget =
        __atomic_fetch_add(&pool->spinning, 1, __ATOMIC_SEQ_CST) < limit ? WEFT__SPIN_NS : 0;
    uint64_t start = weft__now_ns(), now = start;
    bool found = false;
    for (unsigned i = 1;; i++) {
        if (weft__find(w, t)) {
            found = true;
            break;
        }
        if ((i & 7) == 0) {
            now = weft__now_ns();
            if (now - start > budget || weft__should_exit(pool))
                break;
        }
        weft__spin_step(now - start);
    }
    /* The last spinner to find work, while others sleep and more work is
     * queued, wakes one: ramps parallelism up one worker at a time. */
    if (__atomic_fetch_sub(&pool->spinning, 1, __ATOMIC_SEQ_CST) == 1 && found &&
        __atomic_load_n(&pool->sleepers, __ATOMIC_SEQ_CST) != 0 && weft__work_visible(pool))
        weft__pool_wake(pool, 1);
    return found;
}

void weft__spin_step(uint64_t spun_ns)
{
    if (spun_ns < WEFT__SPIN_YIELD_NS) {
        for (int k = 0; k < 4; k++)
            weft__cpu_relax();
    } else {
        sched_yield();
    }
}

/* ---- running tasks -------------------------------------------------------- */

static void weft__count_completed(weft_pool_t *pool)
{
    weft__worker_t *w = weft__self;
    if (w != NULL && w->pool == pool)
        __atomic_store_n(&w->completed, w->completed + 1, __ATOMIC_RELAXED);
    else
        __atomic_fetch_add(&pool->completed_ext, 1, __ATOMIC_RELAXED);
}

void weft__pool_run(weft_pool_t *pool, const weft__task_t *t)
{
    weft__worker_t *w = weft__self;
    weft_task_fn prev_fn = NULL;
    uintptr_t prev_site = 0;
    if (w != NULL) {
        prev_fn = __atomic_load_n(&w->cur_fn, __ATOMIC_RELAXED);
        prev_site = __atomic_load_n(&w->cur_site, __ATOMIC_RELAXED);
        __atomic_store_n(&w->cur_fn, t->fn, __ATOMIC_RELAXED);
        __atomic_store_n(&w->cur_site, t->site, __ATOMIC_RELAXED);
    }
    void *r = t->fn(t->arg);
    if (w != NULL) {
        __atomic_store_n(&w->cur_fn, prev_fn, __ATOMIC_RELAXED);
        __atomic_store_n(&w->cur_site, prev_site, __ATOMIC_RELAXED);
    }
    if (t->fut != NULL)
        weft__future_complete(t->fut, r);
    weft__count_completed(pool);
}

/* A bounded pool has room again: wake blocked submitters.
 *  worker (here)                    submitter (weft__wait_room)
 *  [W] queued -= 1   seq_cst        [W] room_waiters += 1  seq_cst
 *  [R] room_waiters  seq_cst        [R] queued             seq_cst
 * Either we see the waiter and bump room_seq (its futex_wait then fails
 * or is woken), or it sees the room we made and does not sleep. */
static void weft__room_made(weft_pool_t *pool)
{
    __atomic_fetch_sub(&pool->queued, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&pool->room_waiters, __ATOMIC_SEQ_CST) != 0) {
        __atomic_fetch_add(&pool->room_seq, 1, __ATOMIC_SEQ_CST);
        weft__futex_wake(&pool->room_seq, INT32_MAX);
    }
}

/* Run a task a worker took from a queue. */
static void weft__exec(weft__worker_t *w, weft__task_t *t)
{
    weft_pool_t *pool = w->pool;
    if (pool->capacity != 0)
        weft__room_made(pool);
    if (t->fut == NULL || weft__future_claim(t->fut, w->index + 1)) {
        uint64_t waited = weft__ticks() - t->enq;
        if (waited > w->max_wait && waited < (uint64_t)1 << 62) /* not a CPU's skew */
            __atomic_store_n(&w->max_wait, waited, __ATOMIC_RELAXED);
        weft__pool_run(pool, t);
    }
    if (t->fut != NULL)
        weft__future_unref(t->fut);
    /* Release: see weft__all_done(). No wake-up is needed for destroy: this
     * worker re-checks weft__should_exit() itself before it parks, after
     * the fence in weft__park(), and a worker that exits wakes the rest. */
    __atomic_store_n(&w->finished, w->finished + 1, __ATOMIC_RELEASE);
}

void *weft__pool_worker_main(void *arg)
{
    weft__worker_t *w = arg;
    weft_pool_t *pool = w->pool;
    weft__self = w;
    __atomic_store_n(&w->tid, weft__tid(), __ATOMIC_RELAXED);
    weft__task_t t;
    bool woken = false;
    for (;;) {
        /* A worker just woken searches as a spinner, so that if it finds
         * work while more is queued and others sleep, it wakes one more
         * (weft__spin_for_work): a burst of tasks wakes the whole pool, one
         * worker at a time, without a wake-up per task. */
        if ((!woken && weft__find(w, &t)) || weft__spin_for_work(w, &t)) {
            woken = false;
            weft__exec(w, &t);
            continue;
        }
        if (weft__should_exit(pool))
            break;
        weft__park(w);
        woken = true;
    }
    /* Let the other workers see the exit condition too. */
    weft__pool_wake(pool, INT32_MAX);
    __atomic_fetch_add(&pool->exited, 1, __ATOMIC_SEQ_CST);
    weft__futex_wake(&pool->exited, INT32_MAX);
    return NULL;
}

/* ---- submitting ----------------------------------------------------------- */

/*
 * Sleep until a bounded pool has room. The other column of
 * weft__room_made()'s diagram; a submitter that read room_seq before the
 * bump gets EAGAIN from futex_wait.
 */
static int weft__wait_room(weft_pool_t *pool, const weft__deadline_t *d)
{
    __atomic_fetch_add(&pool->room_waiters, 1, __ATOMIC_SEQ_CST);
    uint32_t seq = __atomic_load_n(&pool->room_seq, __ATOMIC_SEQ_CST);
    int r = 0;
    if (__atomic_load_n(&pool->shutdown, __ATOMIC_SEQ_CST))
        r = -ESHUTDOWN;
    else if ((size_t)__atomic_load_n(&pool->queued, __ATOMIC_SEQ_CST) >= pool->capacity &&
             weft__futex_wait(&pool->room_seq, seq, d) == -ETIMEDOUT)
        r = -ETIMEDOUT;
    __atomic_fetch_sub(&pool->room_waiters, 1, __ATOMIC_RELAXED);
    return r;
}

/* Reserve a place in a bounded queue: 0; 1 to run in the caller instead;
 * -EAGAIN, -ETIMEDOUT, -ESHUTDOWN. */
static int weft__reserve(weft_pool_t *pool, bool own, int64_t timeout_ns)
{
    weft__deadline_t d;
    bool have_deadline = false;
    int64_t q = __atomic_load_n(&pool->queued, __ATOMIC_RELAXED);
    for (;;) {
        if ((size_t)q < pool->capacity) {
            if (__atomic_compare_exchange_n(&pool->queued, &q, q + 1, false, __ATOMIC_SEQ_CST,
                                            __ATOMIC_RELAXED))
                return 0;
            continue;
        }
        if (pool->on_full == WEFT_REJECT_CALLER_RUNS || (pool->on_full == WEFT_REJECT_BLOCK && own))
            return 1;
        if (pool->on_full == WEFT_REJECT_ERROR || timeout_ns == 0) {
            __atomic_fetch_add(&pool->rejected, 1, __ATOMIC_RELAXED);
            return -EAGAIN;
        }
        if (!have_deadline)
            have_deadline = weft__deadline_init(&d, timeout_ns) == 0;
        int r = weft__wait_room(pool, &d);
        if (r != 0)
            return r;
        q = __atomic_load_n(&pool->queued, __ATOMIC_RELAXED);
    }
}

/* WEFT_REJECT_CALLER_RUNS (or a worker blocked on its own full pool). */
static int weft__caller_runs(weft_pool_t *pool, weft__task_t *t, weft_future_t **future)
{
    weft__worker_t *w = weft__self;
    if (future != NULL) {
        t->fut = weft__future_new(pool, t, 1);
        if (t->fut == NULL)
            return -ENOMEM;
        (void)weft__future_claim(t->fut, w != NULL && w->pool == pool ? w->index + 1 : 0);
    }
    __atomic_fetch_add(&pool->caller_runs, 1, __ATOMIC_RELAXED);
    weft__pool_run(pool, t);
    if (future != NULL)
        *future = t->fut;
    return 0;
}

/* ---- outside submitters' deques ------------------------------------------ */

/* Per thread: the deque this thread submits to, for a few recent pools. */
#define WEFT__EXT_CACHE 4
static __thread struct {
    uint64_t pool_id;
    weft__ext_t *q; /* NULL with a pool_id set: use the ring */
} weft__ext_cache[WEFT__EXT_CACHE] __attribute__((tls_model("initial-exec")));

/* Find or create the calling thread's deque in `pool` (NULL: none left). */
static weft__ext_t *weft__ext_register(weft_pool_t *pool)
{
    uint32_t tid = weft__tid();
    weft__ext_t *q = NULL;
    weft_mutex_lock(&pool->qmu);
    unsigned n = __atomic_load_n(&pool->next_ext, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < n && q == NULL; i++)
        if (pool->exts[i]->owner == tid)
            q = pool->exts[i];
    if (q == NULL && n < WEFT__EXT_MAX && (q = aligned_alloc(WEFT__CACHELINE, sizeof *q))) {
        memset(q, 0, sizeof *q);
        if (weft__dq_init(&q->dq, WEFT__DEQUE_CAP_EXT) != 0) {
            free(q);
            weft_mutex_unlock(&pool->qmu);
            return NULL;
        }
        q->owner = tid;
        pool->exts[n] = q;
        /* Release: publishes exts[n] to the acquire loads of next_ext. */
        __atomic_store_n(&pool->next_ext, n + 1, __ATOMIC_RELEASE);
    }
    weft_mutex_unlock(&pool->qmu);
    return q;
}

static weft__ext_t *weft__ext_queue(weft_pool_t *pool)
{
    unsigned slot = (unsigned)(pool->id % WEFT__EXT_CACHE);
    if (weft__likely(weft__ext_cache[slot].pool_id == pool->id))
        return weft__ext_cache[slot].q;
    weft__ext_t *q = weft__ext_register(pool);
    weft__ext_cache[slot].pool_id = pool->id;
    weft__ext_cache[slot].q = q;
    return q;
}

/* Put an accepted task on a queue: the caller's own deque (as a worker of
 * the pool, or as an outside submitter) if there is room, else the ring.
 * The count goes up before the push publishes the task: weft__all_done(). */
static int weft__enqueue(weft_pool_t *pool, const weft__task_t *t, weft__worker_t *w)
{
    weft__deque_t *dq = NULL;
    uint64_t *count = NULL;
    if (w != NULL) {
        dq = &w->dq;
        count = &w->submitted;
    } else {
        weft__ext_t *q = weft__ext_queue(pool);
        if (q != NULL) {
            dq = &q->dq;
            count = &q->submitted;
        }
    }
    if (dq != NULL) {
        __atomic_store_n(count, *count + 1, __ATOMIC_RELEASE);
        if (weft__dq_push(dq, t))
            return 0;
        __atomic_store_n(count, *count - 1, __ATOMIC_RELEASE);
    }
    return weft__ring_push(pool, t, w != NULL);
}

static int weft__submit(weft_pool_t *pool, weft__task_t *t, weft_future_t **future,
                        int64_t timeout_ns)
{
    if (pool == NULL || t->fn == NULL || !weft__timeout_valid(timeout_ns))
        return -EINVAL;
    if (future != NULL)
        *future = NULL;
    if (__atomic_load_n(&pool->shutdown, __ATOMIC_RELAXED) && weft_pool_current() != pool)
        return -ESHUTDOWN;
    weft__worker_t *w = weft__self;
    if (w != NULL && w->pool != pool)
        w = NULL;
    if (pool->capacity != 0) {
        int r = weft__reserve(pool, w != NULL, timeout_ns);
        if (r == 1)
            return weft__caller_runs(pool, t, future);
        if (r != 0)
            return r;
    }
    t->enq = weft__ticks();
    if (future != NULL && (t->fut = weft__future_new(pool, t, 2)) == NULL) {
        if (pool->capacity != 0)
            weft__room_made(pool);
        return -ENOMEM;
    }
    int r = weft__enqueue(pool, t, w);
    if (r != 0) {
        if (pool->capacity != 0)
            weft__room_made(pool);
        free(t->fut); /* never published: nobody else holds it */
        return r;
    }
    weft__notify(pool);
    if (future != NULL)
        *future = t->fut;
    return 0;
}

WEFT__NOIPA int weft_pool_submit(weft_pool_t *pool, weft_task_fn fn, void *arg,
                                 weft_future_t **future)
{
    weft__task_t t = {fn, arg, NULL, (uintptr_t)__builtin_return_address(0), 0};
    return weft__submit(pool, &t, future, WEFT_FOREVER);
}

WEFT__NOIPA int weft_pool_submit_timed(weft_pool_t *pool, weft_task_fn fn, void *arg,
                                       weft_future_t **future, int64_t timeout_ns)
{
    weft__task_t t = {fn, arg, NULL, (uintptr_t)__builtin_return_address(0), 0};
    return weft__submit(pool, &t, future, timeout_ns);
}

int weft_pool_submit_at(weft_pool_t *pool, weft_task_fn fn, void *arg, weft_future_t **future,
                        const weft_src_site_t *site)
{
    uintptr_t s = site != NULL ? (uintptr_t)site | WEFT__SITE_TAG : 0;
    weft__task_t t = {fn, arg, NULL, s, 0};
    return weft__submit(pool, &t, future, WEFT_FOREVER);
}
