/*
 * weft/pool.h - thread pools (bulkheads) and futures.
 *
 * A pool is a fixed set of worker threads running submitted tasks. Several
 * named pools side by side are bulkheads: slow, blocking work in one pool
 * cannot starve the work of another. Each worker has its own queue and
 * steals from the others when idle; a thread outside the pool submits
 * into a queue of its own that the workers steal from. An idle worker
 * spins briefly, then parks.
 *
 * A task may have a future (weft_pool_submit's `future` argument), through
 * which its result is awaited or the task cancelled. A task submitted
 * without a future costs no allocation.
 *
 * Pool-induced deadlock (a worker waiting on a task queued in its own pool
 * while every worker of the pool does the same) is detected: the wait that
 * closes the cycle returns -EDEADLK, as does a wait that leads back to a
 * task the waiting worker is itself running; with WEFT_CHECK set in the
 * environment (or checking enabled) a report naming the pool, the tasks and
 * their submit sites is printed on stderr (see docs/exec.md). With the option `wait_runs_inline`,
 * a worker waiting on a task still queued in its own pool runs that task
 * itself instead, so the same code completes.
 *
 * Thread safety: every function may be called from any thread, including
 * from tasks, except where noted (destroy and release are the usual
 * lifetime rules: no use of the object after, or concurrently with, them).
 */
#ifndef WEFT_POOL_H
#define WEFT_POOL_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_pool weft_pool_t;
typedef struct weft_future weft_future_t;

/* A task: runs on a worker; its return value is the future's result. */
typedef void *(*weft_task_fn)(void *arg);

/* What weft_pool_submit does when the queue is full. */
typedef enum weft_reject {
    WEFT_REJECT_ERROR = 0,   /* return -EAGAIN (the default) */
    WEFT_REJECT_BLOCK,       /* wait for room (a worker of the pool itself runs
                                the task in place rather than wait) */
    WEFT_REJECT_CALLER_RUNS, /* run the task in the submitting thread */
} weft_reject_t;

/* Options for weft_pool_create. All-zero options (or NULL) give defaults. */
typedef struct weft_pool_opts {
    const char *name;      /* shown in reports and stats; default "pool"; must
                              outlive the pool (a literal is ideal) */
    unsigned threads;      /* 0: one per CPU */
    size_t queue_capacity; /* tasks queued and not yet started; 0: unbounded */
    weft_reject_t on_full; /* see weft_reject_t */
    bool wait_runs_inline; /* a worker waiting on a task still queued in its
                              own pool runs it itself (ForkJoin-style join) */
} weft_pool_opts_t;

/* A snapshot of a pool's counters (each read atomically, not all at once). */
typedef struct weft_pool_stats {
    const char *name;
    unsigned threads;
    uint64_t queued;            /* tasks waiting to start, now */
    uint64_t running;           /* tasks running, now */
    uint64_t submitted;         /* tasks accepted since creation */
    uint64_t completed;         /* tasks that ran to the end */
    uint64_t rejected;          /* submits refused with -EAGAIN */
    uint64_t caller_runs;       /* tasks run by the submitter (queue full) */
    uint64_t cancelled;         /* tasks cancelled before they started */
    uint64_t inline_runs;       /* tasks run inline by a waiting worker */
    uint64_t deadlocks;         /* waits that returned -EDEADLK */
    uint64_t steals;            /* tasks taken from another worker's queue */
    uint64_t max_queue_wait_ns; /* longest time a task waited to start */
} weft_pool_stats_t;

/* Where a task was submitted, as captured by WEFT_POOL_SUBMIT. */
typedef struct weft_src_site {
    const char *file;
    const char *func;
    int line;
} weft_src_site_t;

/*
 * Create a pool and start its workers. NULL opts: defaults. On success
 * *pool is set and weft_pool_destroy is owed. -EINVAL for a NULL pool or an
 * unknown on_full; -ENOMEM; -EAGAIN if threads cannot be created.
 */
WEFT_API int weft_pool_create(weft_pool_t **pool, const weft_pool_opts_t *opts);

/*
 * Queue fn(arg). If future is not NULL, *future receives a new future that
 * the caller must weft_future_release. Returns 0; -EAGAIN when the queue is
 * full and on_full is WEFT_REJECT_ERROR; -ESHUTDOWN once destroy has begun;
 * -ENOMEM; -EINVAL for a NULL pool or fn. On failure fn is not run and no
 * future is returned. With WEFT_REJECT_CALLER_RUNS and a full queue, fn runs
 * in the caller before submit returns (the future is then already done).
 * With WEFT_REJECT_BLOCK and a full queue the caller waits for room without
 * limit (see weft_pool_submit_timed).
 */
WEFT_API int weft_pool_submit(weft_pool_t *pool, weft_task_fn fn, void *arg,
                              weft_future_t **future);

/* As weft_pool_submit; a WEFT_REJECT_BLOCK wait lasts at most timeout_ns
 * (then -ETIMEDOUT). For other policies the timeout is not used. */
WEFT_API int weft_pool_submit_timed(weft_pool_t *pool, weft_task_fn fn, void *arg,
                                    weft_future_t **future, int64_t timeout_ns);

/* As weft_pool_submit, recording `site` (a static object) as the submit site
 * shown in deadlock reports. Use it through WEFT_POOL_SUBMIT. */
WEFT_API int weft_pool_submit_at(weft_pool_t *pool, weft_task_fn fn, void *arg,
                                 weft_future_t **future, const weft_src_site_t *site);

/* weft_pool_submit that records this file, line and function for reports. */
#define WEFT_POOL_SUBMIT(pool, fn, arg, future)                                                    \
    __extension__({                                                                                \
        static const weft_src_site_t weft_site_ = {__FILE__, __func__, __LINE__};                  \
        weft_pool_submit_at((pool), (fn), (arg), (future), &weft_site_);                           \
    })

/*
 * Wait for the task's result. 0 (and *result, if result is not NULL, gets
 * fn's return value); -ETIMEDOUT; -ECANCELED if the task was cancelled;
 * -EDEADLK if the caller is a worker of the task's pool and waiting would
 * deadlock (every worker would wait on a task queued in the pool, or the
 * wait leads back to a task the caller is running); with wait_runs_inline
 * a task still queued is run by the caller instead (0 and its result);
 * -EINVAL for a NULL f or a bad timeout. WEFT_FOREVER waits without limit;
 * 0 polls. Any number of threads may wait on one future.
 */
WEFT_API int weft_future_wait(weft_future_t *f, int64_t timeout_ns, void **result);

/* Cancel a task that has not started: it will never run, and waiters get
 * -ECANCELED. 0; -EBUSY if it is running or done; -EINVAL for NULL. */
WEFT_API int weft_future_cancel(weft_future_t *f);

/* True once the task is done or cancelled (a wait would not block). */
WEFT_API bool weft_future_ready(const weft_future_t *f);

/* Give up the caller's reference. The task still runs (cancel it first if
 * it should not). NULL is ignored. The future must not be used after. */
WEFT_API void weft_future_release(weft_future_t *f);

/* Fill *out with the pool's counters. -EINVAL on NULL. */
WEFT_API int weft_pool_stats(weft_pool_t *pool, weft_pool_stats_t *out);

/* The pool's name. Never NULL for a valid pool. */
WEFT_API const char *weft_pool_name(const weft_pool_t *pool);

/* The pool whose worker is calling, or NULL outside every pool's workers. */
WEFT_API weft_pool_t *weft_pool_current(void);

/*
 * Stop accepting tasks, run every task already queued, then join the
 * workers and free the pool. Waits as long as the running tasks take: a set
 * of tasks that wait on each other inside the pool is broken up by
 * -EDEADLK (see weft_future_wait), but a task blocked forever on something
 * outside the pool keeps destroy waiting (use weft_pool_destroy_timed).
 * -EDEADLK if called from a worker of the pool itself; -EINVAL on NULL.
 * Futures still held stay valid until released.
 */
WEFT_API int weft_pool_destroy(weft_pool_t *pool);

/* As weft_pool_destroy, waiting at most timeout_ns for the workers:
 * -ETIMEDOUT leaves the pool shut (no new tasks) but alive; call again. */
WEFT_API int weft_pool_destroy_timed(weft_pool_t *pool, int64_t timeout_ns);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_POOL_H */
