/*
 * pool_life.c - a thread pool's life: create, statistics, destroy.
 *
 * Owns: allocating the pool and its workers, starting the worker threads
 * (with every signal blocked), the statistics snapshot, and the shutdown
 * sequence: set `shutdown` under qmu (no new outside submits), wake every
 * parked worker and blocked submitter, wait (with a deadline) until every
 * worker has returned, join them, free. The workers themselves decide when
 * to return (weft__should_exit in pool.c): once nothing is queued or
 * running.
 */
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal/exec.h"
#include "internal/instrument.h"

#define WEFT__MAX_THREADS 4096u

static uint64_t weft__pool_ids; /* atomic: the last pool id handed out */

static bool weft__check_requested(void)
{
    const char *v = getenv("WEFT_CHECK");
    if (v != NULL && v[0] != '\0' && strcmp(v, "0") != 0)
        return true;
    return (__atomic_load_n(&weft__instr, __ATOMIC_RELAXED) & WEFT__INSTR_CHECK) != 0;
}

static void weft__pool_free(weft_pool_t *pool);

static int weft__pool_alloc(weft_pool_t **out, const weft_pool_opts_t *o)
{
    unsigned n = o->threads != 0 ? o->threads : weft_cpu_count();
    if (n > WEFT__MAX_THREADS || (unsigned)o->on_full > WEFT_REJECT_CALLER_RUNS)
        return -EINVAL;
    weft_pool_t *pool = calloc(1, sizeof *pool);
    size_t bytes = (n * sizeof(weft__worker_t) + WEFT__CACHELINE - 1) & ~(size_t)63;
    weft__worker_t *ws = aligned_alloc(WEFT__CACHELINE, bytes);
    if (pool == NULL || ws == NULL) {
        free(pool);
        free(ws);
        return -ENOMEM;
    }
    memset(ws, 0, bytes);
    pool->name = o->name != NULL ? o->name : "pool";
    pool->nthreads = n;
    pool->capacity = o->queue_capacity;
    pool->on_full = o->on_full;
    pool->inline_wait = o->wait_runs_inline;
    pool->workers = ws;
    pool->report = weft__check_requested();
    pool->born_ticks = weft__ticks();
    pool->born_ns = weft__now_ns();
    pool->id = __atomic_add_fetch(&weft__pool_ids, 1, __ATOMIC_RELAXED);
    weft_mutex_init(&pool->qmu, "weft.pool.queue");
    weft_mutex_init(&pool->dl_mu, "weft.pool.deadlock");
    *out = pool;
    int r = 0;
    for (unsigned i = 0; i < n; i++) {
        ws[i].pool = pool;
        ws[i].index = i;
        ws[i].rng = 0x9E3779B97F4A7C15ull * (i + 1);
        if (r == 0)
            r = weft__dq_init(&ws[i].dq, WEFT__DEQUE_CAP_WORKER);
    }
    if (r != 0)
        weft__pool_free(pool);
    return r;
}

static void weft__pool_free(weft_pool_t *pool)
{
    (void)weft_mutex_destroy(&pool->qmu);
    (void)weft_mutex_destroy(&pool->dl_mu);
    for (unsigned i = 0; i < pool->next_ext; i++) {
        weft__dq_free(&pool->exts[i]->dq);
        free(pool->exts[i]);
    }
    for (unsigned i = 0; i < pool->nthreads; i++)
        weft__dq_free(&pool->workers[i].dq);
    free(pool->ring);
    free(pool->workers);
    free(pool);
}

/* Start the workers with every signal blocked (signals go to the
 * application's threads, as in libuv's pool). */
static int weft__pool_start(weft_pool_t *pool)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    unsigned started = 0;
    int err = 0;
    for (; started < pool->nthreads; started++) {
        weft__worker_t *w = &pool->workers[started];
        err = pthread_create(&w->thread, NULL, weft__pool_worker_main, w);
        if (err != 0)
            break;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err == 0)
        return 0;
    /* Let the started workers exit (nothing is queued), then join them. */
    __atomic_store_n(&pool->shutdown, 1, __ATOMIC_SEQ_CST);
    weft__pool_wake(pool, INT32_MAX);
    for (unsigned i = 0; i < started; i++)
        pthread_join(pool->workers[i].thread, NULL);
    return -err;
}

int weft_pool_create(weft_pool_t **pool, const weft_pool_opts_t *opts)
{
    static const weft_pool_opts_t defaults;
    if (pool == NULL)
        return -EINVAL;
    *pool = NULL;
    weft_pool_t *p;
    int r = weft__pool_alloc(&p, opts != NULL ? opts : &defaults);
    if (r != 0)
        return r;
    r = weft__pool_start(p);
    if (r != 0) {
        weft__pool_free(p);
        return r == -ENOMEM ? r : -EAGAIN;
    }
    *pool = p;
    return 0;
}

weft_pool_t *weft_pool_current(void)
{
    weft__worker_t *w = weft__self;
    return w != NULL ? w->pool : NULL;
}

const char *weft_pool_name(const weft_pool_t *pool)
{
    return pool != NULL ? pool->name : "(null)";
}

/* Convert a weft__ticks() interval with the rate seen since creation. */
static uint64_t weft__ticks_to_ns(const weft_pool_t *pool, uint64_t ticks)
{
    uint64_t dt = weft__ticks() - pool->born_ticks, dn = weft__now_ns() - pool->born_ns;
    if (dt == 0 || dt == dn)
        return ticks;
    return (uint64_t)((double)ticks * ((double)dn / (double)dt));
}

static uint64_t weft__ld(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

int weft_pool_stats(weft_pool_t *pool, weft_pool_stats_t *out)
{
    if (pool == NULL || out == NULL)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    out->name = pool->name;
    out->threads = pool->nthreads;
    out->queued = __atomic_load_n(&pool->rcount, __ATOMIC_RELAXED);
    out->submitted = weft__ld(&pool->ring_pushed);
    unsigned ne = __atomic_load_n(&pool->next_ext, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < ne; i++) {
        out->queued += (uint64_t)weft__dq_size(&pool->exts[i]->dq);
        out->submitted += weft__ld(&pool->exts[i]->submitted);
    }
    out->completed = weft__ld(&pool->completed_ext);
    uint64_t max_wait = 0;
    for (unsigned i = 0; i < pool->nthreads; i++) {
        weft__worker_t *w = &pool->workers[i];
        out->queued += (uint64_t)weft__dq_size(&w->dq);
        out->running += __atomic_load_n(&w->cur_fn, __ATOMIC_RELAXED) != NULL;
        out->submitted += weft__ld(&w->submitted);
        out->completed += weft__ld(&w->completed);
        out->steals += weft__ld(&w->steals);
        out->inline_runs += weft__ld(&w->inline_runs);
        uint64_t mw = weft__ld(&w->max_wait);
        if (mw > max_wait)
            max_wait = mw;
    }
    out->rejected = weft__ld(&pool->rejected);
    out->caller_runs = weft__ld(&pool->caller_runs);
    out->submitted += out->caller_runs;
    out->cancelled = weft__ld(&pool->cancelled);
    out->deadlocks = weft__ld(&pool->deadlocks);
    out->max_queue_wait_ns = weft__ticks_to_ns(pool, max_wait);
    return 0;
}

/* Wait until every worker has returned, or the deadline. No wake-up is
 * missed: a worker changes `exited` before its futex_wake, and futex_wait
 * sleeps only while `exited` still holds the value e we read, so either we
 * see the new count or we are asleep when the wake comes. */
static int weft__wait_exited(weft_pool_t *pool, const weft__deadline_t *d)
{
    for (;;) {
        uint32_t e = __atomic_load_n(&pool->exited, __ATOMIC_SEQ_CST);
        if (e == pool->nthreads)
            return 0;
        if (weft__futex_wait(&pool->exited, e, d) == -ETIMEDOUT)
            return -ETIMEDOUT;
    }
}

int weft_pool_destroy_timed(weft_pool_t *pool, int64_t timeout_ns)
{
    weft__deadline_t d;
    if (pool == NULL || weft__deadline_init(&d, timeout_ns) != 0)
        return -EINVAL;
    if (weft_pool_current() == pool)
        return -EDEADLK;
    weft_mutex_lock(&pool->qmu);
    __atomic_store_n(&pool->shutdown, 1, __ATOMIC_SEQ_CST);
    weft_mutex_unlock(&pool->qmu);
    /* Wake parked workers (they re-check weft__should_exit) and blocked
     * submitters (they return -ESHUTDOWN). */
    weft__pool_wake(pool, INT32_MAX);
    __atomic_fetch_add(&pool->room_seq, 1, __ATOMIC_SEQ_CST);
    weft__futex_wake(&pool->room_seq, INT32_MAX);
    if (weft__wait_exited(pool, &d) != 0)
        return -ETIMEDOUT;
    for (unsigned i = 0; i < pool->nthreads; i++)
        pthread_join(pool->workers[i].thread, NULL);
    /* Blocked submitters may still be leaving weft__wait_room(). */
    while (__atomic_load_n(&pool->room_waiters, __ATOMIC_SEQ_CST) != 0)
        sched_yield();
    weft__pool_free(pool);
    return 0;
}

int weft_pool_destroy(weft_pool_t *pool)
{
    return weft_pool_destroy_timed(pool, WEFT_FOREVER);
}
