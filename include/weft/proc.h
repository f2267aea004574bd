/*
 * weft/proc.h - a process pool that survives crashing tasks.
 *
 * The workers are processes forked from the calling program. A task is a
 * function of the program (its address is valid in the workers, which are
 * forks of it) plus an input byte buffer; its result is a byte buffer,
 * delivered through a future. The parent and each worker exchange
 * length-prefixed messages over a socketpair; payloads of
 * `shm_threshold` bytes or more travel in a memfd (shared memory) whose
 * descriptor is passed along, so large inputs and results are not copied
 * through the socket.
 *
 * Isolation: a task that crashes its worker (a signal such as SIGSEGV, or
 * exit()) fails only its own future, with -ECHILD and a description of the
 * signal or exit status (weft_proc_failure); the worker is replaced and
 * every other task completes. A task running past `task_timeout_ns` has its
 * worker killed (SIGKILL) and replaced, and fails with -ETIME. A worker is
 * retired and replaced after `max_tasks_per_worker` tasks. Destroy runs the
 * queued tasks, then stops and reaps every worker: no zombies, no leaked
 * descriptors.
 *
 * Task functions run in a single-threaded child: they must not rely on
 * other threads of the parent (locks another thread held at fork time stay
 * held in the child). The workers start with the signal mask of the thread
 * that created the pool and default signal dispositions (SIGPIPE ignored).
 *
 * Thread safety: every function may be called from any thread, except that
 * destroy and release follow the usual lifetime rules.
 */
#ifndef WEFT_PROC_H
#define WEFT_PROC_H

#include <sys/types.h>

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_proc_pool weft_proc_pool_t;
typedef struct weft_proc_future weft_proc_future_t;

/*
 * A task, run in a worker process. Reads in[0..in_len). To return a
 * result, set *out to a malloc'd buffer of *out_len bytes (the worker sends
 * and frees it) or leave *out NULL for an empty result. Return 0, or a
 * negative errno that becomes the future's error.
 */
typedef int (*weft_proc_fn)(const void *in, size_t in_len, void **out, size_t *out_len);

typedef struct weft_proc_opts {
    const char *name;              /* default "proc"; must outlive the pool */
    unsigned workers;              /* 0: one per CPU */
    int64_t task_timeout_ns;       /* 0: none; else the worker is killed after this */
    unsigned max_tasks_per_worker; /* 0: unlimited; else recycle after this many */
    size_t shm_threshold;          /* payloads this large go by memfd; 0: 64 KiB */
} weft_proc_opts_t;

/* Why a task failed. */
typedef enum weft_proc_fail {
    WEFT_PROC_OK = 0,     /* it did not fail */
    WEFT_PROC_SIGNALED,   /* its worker was killed by signal `signo` */
    WEFT_PROC_EXITED,     /* its worker exited with `exit_code` */
    WEFT_PROC_TIMEDOUT,   /* it ran past task_timeout_ns; the worker was killed */
    WEFT_PROC_TASK_ERROR, /* the function returned the negative errno `err` */
    WEFT_PROC_IPC_ERROR,  /* the pool could not talk to the worker (`err`) */
    WEFT_PROC_CANCELLED,  /* cancelled before it started, or by destroy */
} weft_proc_fail_t;

typedef struct weft_proc_failure {
    weft_proc_fail_t kind;
    int signo;     /* WEFT_PROC_SIGNALED (SIGKILL for WEFT_PROC_TIMEDOUT) */
    int exit_code; /* WEFT_PROC_EXITED */
    int err;       /* the future's error code (negative), 0 if none */
    pid_t pid;     /* the worker that ran it, 0 if none did */
    char what[96]; /* e.g. "worker 1234 killed by signal 11 (SIGSEGV)" */
} weft_proc_failure_t;

typedef struct weft_proc_stats {
    const char *name;
    unsigned workers; /* configured */
    uint64_t submitted;
    uint64_t completed; /* results delivered (including task errors) */
    uint64_t crashed;   /* tasks whose worker died (signal or exit) */
    uint64_t timed_out; /* tasks killed by the hard timeout */
    uint64_t spawned;   /* worker processes started, replacements included */
    uint64_t recycled;  /* workers retired by max_tasks_per_worker */
    uint64_t queued;    /* waiting for a worker, now */
    uint64_t running;   /* running in a worker, now */
} weft_proc_stats_t;

/* Create the pool and fork its workers. -EINVAL, -ENOMEM, -EAGAIN. */
WEFT_API int weft_proc_pool_create(weft_proc_pool_t **pool, const weft_proc_opts_t *opts);

/*
 * Queue fn(in[0..in_len)) (the input is copied; in may be NULL when in_len
 * is 0). *future receives a future to wait on and release. 0; -ESHUTDOWN
 * once destroy has begun; -ENOMEM; -EINVAL for NULL pool, fn or future.
 */
WEFT_API int weft_proc_submit(weft_proc_pool_t *pool, weft_proc_fn fn, const void *in,
                              size_t in_len, weft_proc_future_t **future);

/*
 * Wait for the result. 0: *out (if not NULL) points to the result bytes,
 * valid until the future is released, and *out_len gets their count.
 * -ETIMEDOUT if it did not finish within timeout_ns (WEFT_FOREVER: no
 * limit). The task failed: -ECHILD (its worker died), -ETIME (hard
 * timeout), -ECANCELED, the function's own negative return, or an IPC
 * error; weft_proc_failure says which. -EINVAL for NULL f or a bad timeout.
 */
WEFT_API int weft_proc_wait(weft_proc_future_t *f, int64_t timeout_ns, const void **out,
                            size_t *out_len);

/* Describe how the task ended (kind WEFT_PROC_OK if it succeeded, or if it
 * has not finished). -EINVAL on NULL. */
WEFT_API int weft_proc_failure(const weft_proc_future_t *f, weft_proc_failure_t *out);

/* Cancel a task that has not been sent to a worker: 0, or -EBUSY. */
WEFT_API int weft_proc_cancel(weft_proc_future_t *f);

/* Give up the caller's reference (NULL is ignored). */
WEFT_API void weft_proc_release(weft_proc_future_t *f);

WEFT_API int weft_proc_pool_stats(weft_proc_pool_t *pool, weft_proc_stats_t *out);

/*
 * Stop accepting tasks, run the queued ones, then stop and reap every
 * worker and free the pool. If that takes longer than timeout_ns, the
 * workers still running are killed (their tasks fail with -ECHILD,
 * WEFT_PROC_CANCELLED) and the tasks not yet started are cancelled: destroy
 * always finishes. 0, or -EINVAL.
 */
WEFT_API int weft_proc_pool_destroy_timed(weft_proc_pool_t *pool, int64_t timeout_ns);

/* weft_proc_pool_destroy_timed without a limit. */
WEFT_API int weft_proc_pool_destroy(weft_proc_pool_t *pool);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_PROC_H */
