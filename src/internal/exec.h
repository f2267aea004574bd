/*
 * Internal structures of the exec layer's thread pool: tasks, the per-worker
 * work-stealing deque, workers, the pool and futures. Shared by
 * src/exec/pool.c (queues, workers, parking) and src/exec/future.c (futures,
 * deadlock detection and its report).
 */
#ifndef WEFT_INTERNAL_EXEC_H
#define WEFT_INTERNAL_EXEC_H

#include <pthread.h>
#include <stdint.h>

#include "internal/base.h"
#include "weft/pool.h"
#include "weft/sync.h"

#define WEFT__CACHELINE 64

/*
 * A full (seq_cst) fence. ThreadSanitizer does not model fences (gcc
 * refuses to compile them under -fsanitize=thread), so there it becomes a
 * seq_cst read-modify-write of a local, which is a full barrier on the
 * hardware; TSan checks data races, and no non-atomic data in the exec
 * layer relies on a fence for its happens-before edge.
 */
#if defined(__SANITIZE_THREAD__)
#define WEFT__TSAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT__TSAN_BUILD 1
#endif
#endif
static inline void weft__fence_seq_cst(void)
{
#ifdef WEFT__TSAN_BUILD
    int dummy = 0;
    __atomic_fetch_add(&dummy, 0, __ATOMIC_SEQ_CST);
#else
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

/*
 * One step of a bounded spin-wait: the CPU's pause instruction at first,
 * then sched_yield() once `spun_ns` exceeds WEFT__SPIN_YIELD_NS. On an idle
 * machine yield returns at once and costs little more than a pause; on an
 * oversubscribed one it hands the CPU to the thread being waited for,
 * which a pure spin would keep off it for a whole time slice.
 */
#define WEFT__SPIN_YIELD_NS 5000u
void weft__spin_step(uint64_t spun_ns);

/*
 * A cheap clock for the queue-wait statistic, read twice per task: the
 * time-stamp counter on x86 (constant-rate on every CPU weft targets; about
 * 10 ns against 25 ns for clock_gettime), converted to nanoseconds only
 * when statistics are read, by the rate measured over the pool's life.
 * Elsewhere it is the monotonic clock itself.
 */
static inline uint64_t weft__ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_ia32_rdtsc();
#else
    return weft__now_ns();
#endif
}

/* ---- tasks ---------------------------------------------------------------- */

/*
 * A queued task, copied by value through the queues (no allocation per
 * task). `site` is the submit site: a return address, or a
 * weft_src_site_t pointer tagged with WEFT__SITE_TAG (WEFT_POOL_SUBMIT).
 * The tag is the top bit: user-space addresses never have it, while a
 * return address may be odd, so the low bit could not serve.
 */
typedef struct weft__task {
    weft_task_fn fn;
    void *arg;
    weft_future_t *fut; /* NULL: nobody awaits the result */
    uintptr_t site;
    uint64_t enq; /* weft__ticks() when queued, for the queue-wait statistic */
} weft__task_t;

#define WEFT__SITE_TAG ((uintptr_t)1 << (sizeof(uintptr_t) * 8 - 1))

#define WEFT__TASK_WORDS 5
typedef struct weft__slot {
    uintptr_t w[WEFT__TASK_WORDS];
} weft__slot_t;

_Static_assert(sizeof(weft__task_t) == sizeof(weft__slot_t), "task is five words");

/* ---- futures ---------------------------------------------------------------- */

/*
 * Future states (the futex word `state`):
 *
 *   QUEUED     submitted, not started; cancel or a worker may claim it
 *   RUNNING    claimed by one worker (or an inline waiter); `runner` says who
 *   DONE       `result` is valid (stored before the release of DONE)
 *   CANCELLED  cancelled while QUEUED; fn never runs
 *
 * QUEUED -> RUNNING and QUEUED -> CANCELLED are CASes, so exactly one of
 * "a worker runs it", "a waiter runs it inline", "it is cancelled" wins.
 */
enum {
    WEFT__F_QUEUED = 0,
    WEFT__F_RUNNING = 1,
    WEFT__F_DONE = 2,
    WEFT__F_CANCELLED = 3,
};

struct weft_future {
    uint32_t state;    /* atomic; futex word */
    uint32_t refs;     /* atomic: the caller's, plus the queue's until popped */
    uint32_t waiters;  /* atomic: threads asleep (or about to sleep) on state */
    uint32_t runner;   /* atomic, relaxed: worker index + 1 while RUNNING, else 0 */
    void *result;      /* written before DONE is released; read after acquiring it */
    weft_pool_t *pool; /* read-only */
    weft_task_fn fn;   /* read-only: for inline runs and reports */
    void *arg;         /* read-only: for inline runs */
    uintptr_t site;    /* read-only: for reports */
};

/* ---- the work-stealing deque (Chase-Lev, fixed capacity) ------------------ */

/* Capacities (powers of two); a full deque overflows to the shared ring.
 * Outside submitters get more room: a burst from one thread lands there. */
#define WEFT__DEQUE_CAP_WORKER 1024u
#define WEFT__DEQUE_CAP_EXT 4096u

typedef struct weft__deque {
    _Alignas(WEFT__CACHELINE) int64_t top;    /* atomic: thieves CAS it up */
    _Alignas(WEFT__CACHELINE) int64_t bottom; /* atomic; written by the owner only */
    int64_t top_seen;                         /* owner only: a past value of top */
    weft__slot_t *slots;                      /* read-only pointer; words accessed with
                                                 relaxed atomics */
    int64_t mask;                             /* read-only: capacity - 1 */
} weft__deque_t;

/* pool.c: allocate a deque's slots (capacity a power of two) or free them. */
int weft__dq_init(weft__deque_t *q, unsigned capacity);
void weft__dq_free(weft__deque_t *q);

/* ---- submission queues of threads outside the pool ------------------------ */

/*
 * A thread outside the pool that submits gets its own deque, which it only
 * pushes to and the workers only steal from, so a submit takes no lock and
 * touches no line that other submitters write. Registered on first use, kept
 * until the pool is destroyed; past WEFT__EXT_MAX threads, submitters share
 * the locked ring.
 */
#define WEFT__EXT_MAX 64u

typedef struct weft__ext {
    weft__deque_t dq;
    _Alignas(WEFT__CACHELINE) uint64_t submitted; /* atomic; written by the owner only */
    uint32_t owner;                               /* read-only: the owner's tid */
} weft__ext_t;

/* ---- workers and the pool ------------------------------------------------- */

typedef struct weft__worker {
    weft__deque_t dq;
    _Alignas(WEFT__CACHELINE) weft_pool_t *pool; /* read-only */
    unsigned index;                              /* read-only */
    pthread_t thread;                            /* written before the worker runs */
    uint32_t tid;                                /* atomic, relaxed: for reports */
    uint64_t rng;                                /* owner only: victim choice */
    weft_future_t *waiting_on; /* protected by pool->dl_mu: future this worker waits on */
    weft_task_fn cur_fn;       /* atomic, relaxed; owner writes: the running task */
    uintptr_t cur_site;        /* atomic, relaxed; owner writes */
    /* Statistics: atomic, relaxed, written by the owner only. */
    uint64_t completed;
    uint64_t steals;
    uint64_t inline_runs;
    uint64_t submitted; /* tasks this worker queued (before publishing them) */
    uint64_t finished;  /* tasks this worker took off a queue and is done with */
    uint64_t max_wait;  /* in weft__ticks() units */
} weft__worker_t;

struct weft_pool {
    const char *name;        /* read-only */
    unsigned nthreads;       /* read-only */
    size_t capacity;         /* read-only; 0: unbounded */
    weft_reject_t on_full;   /* read-only */
    bool inline_wait;        /* read-only */
    weft__worker_t *workers; /* read-only array of nthreads */

    /* The shared (injection) queue for tasks submitted from outside. */
    weft_mutex_t qmu;
    weft__task_t *ring;   /* protected by qmu */
    size_t rcap;          /* protected by qmu: a power of two */
    size_t rhead;         /* protected by qmu */
    size_t rcount;        /* atomic; written under qmu, read without it */
    uint64_t ring_pushed; /* atomic; written under qmu: tasks ever queued on the ring */
    uint32_t shutdown;    /* atomic; set under qmu by destroy */
    uint64_t id;          /* read-only: unique, never reused (keys submitters' caches) */

    /* Deques of outside submitters: entries [0, next_ext) are published. */
    weft__ext_t *exts[WEFT__EXT_MAX]; /* written under qmu, before next_ext */
    uint32_t next_ext;                /* atomic: release by the registrar, acquire by readers */

    /* Bounded pools only: tasks queued and not started. */
    _Alignas(WEFT__CACHELINE) int64_t queued; /* atomic */

    /* Parking (an eventcount): workers sleep on ec_seq. */
    _Alignas(WEFT__CACHELINE) uint32_t ec_seq; /* atomic; futex word */
    uint32_t sleepers;                         /* atomic: workers parked or about to park */
    uint32_t spinning;                         /* atomic: workers searching for work */
    uint32_t exited;                           /* atomic; futex word: workers that have returned */

    /* WEFT_REJECT_BLOCK submitters wait for room on room_seq. */
    _Alignas(WEFT__CACHELINE) uint32_t room_seq; /* atomic; futex word */
    uint32_t room_waiters;                       /* atomic */

    /* Deadlock detection: worker wait registrations and the report. */
    weft_mutex_t dl_mu;

    /* Statistics: atomic, relaxed. */
    uint64_t rejected;
    uint64_t caller_runs;
    uint64_t cancelled;
    uint64_t deadlocks;
    uint64_t completed_ext; /* tasks completed outside the workers (caller runs) */
    bool report;            /* read-only: print deadlock reports (WEFT_CHECK) */
    uint64_t born_ticks;    /* read-only: weft__ticks() at creation */
    uint64_t born_ns;       /* read-only: weft__now_ns() at the same moment */
};

/*
 * Deliberate breakage for the stress harness's self-test (never set by the
 * library): WEFT__FAULT_STEAL_NO_CAS makes a thief take tasks (one, or a
 * batch from a submitter's deque) by storing the new top instead of a CAS,
 * so two thieves can take the same task (it runs twice) or skip one (it
 * never runs).
 */
enum { WEFT__FAULT_STEAL_NO_CAS = 1 };
extern int weft__exec_fault;

/* The worker the calling thread is, or NULL. */
extern __thread weft__worker_t *weft__self;

/* future.c */
weft_future_t *weft__future_new(weft_pool_t *pool, const weft__task_t *t, uint32_t refs);
void weft__future_unref(weft_future_t *f);
/* Claim a queued future for running (QUEUED -> RUNNING): false if it was
 * cancelled or claimed by someone else. */
bool weft__future_claim(weft_future_t *f, unsigned runner);
void weft__future_complete(weft_future_t *f, void *result);

/* Tasks in a deque now (a snapshot; never negative). */
static inline int64_t weft__dq_size(weft__deque_t *q)
{
    int64_t n =
        __atomic_load_n(&q->bottom, __ATOMIC_SEQ_CST) - __atomic_load_n(&q->top, __ATOMIC_SEQ_CST);
    return n > 0 ? n : 0;
}

/* pool.c */
/* A worker thread's body. */
void *weft__pool_worker_main(void *arg);
/* Bump the parking eventcount and wake up to n parked workers. */
void weft__pool_wake(weft_pool_t *pool, int n);
/* Run a task in the calling thread (a worker, an inline waiter or a
 * caller-runs submitter), with its future already claimed if it has one. */
void weft__pool_run(weft_pool_t *pool, const weft__task_t *t);

/* pool_report.c: print the pool-deadlock report for `waiter`, which found
 * that waiting on `f` would deadlock: every worker is stuck, or (`cycle`)
 * the wait leads back to a task the waiter itself runs. Called with
 * pool->dl_mu held. */
void weft__pool_deadlock_report(weft_pool_t *pool, const weft__worker_t *waiter,
                                const weft_future_t *f, bool cycle);

#endif /* WEFT_INTERNAL_EXEC_H */
