/*
 * ownership.c - the `ownership` experiment: a mutex has an owner and refuses
 * an unlock from any other thread; a semaphore has no owner, so any thread
 * may release it. That is what makes a semaphore a signal between threads,
 * and also what lets a stray release (a double release on an error path)
 * silently break the mutual exclusion of a binary semaphore used as a lock.
 *
 * Steps:
 *  1. Thread A locks a weft mutex; thread B tries to unlock it: -EPERM, and
 *     the mutex is still A's (B's trylock says -EBUSY, A's held() is true).
 *  2. A binary semaphore as a signal: B waits on it (count 0), A releases
 *     it: B wakes. A release from a thread that never acquired is allowed.
 *  3. The bug that permits: a binary semaphore used as a lock, released
 *     twice on one path. Its count becomes 2, and workers then find two
 *     threads inside the "critical section" at once, losing updates to a
 *     counter it was meant to protect. The same double unlock of a mutex
 *     returns -EPERM and changes nothing.
 *
 * Verdict: reproduced when the mutex refused the foreign unlock and stayed
 * held, the semaphore accepted the foreign release, and after the double
 * release two threads were observed in the critical section at once.
 */
#include <stdio.h>

#include "weft.h"
#include "lab/lab.h"

#define WORKERS 4u

struct own_shared {
    weft_mutex_t mu;
    weft_sem_t sem;
    struct weft_lab_gate gate;
    int foreign_unlock, foreign_trylock, foreign_release, signal_wait;
    bool held_after;
    /* Step 3. */
    uint64_t iters;
    unsigned inside, max_inside; /* atomic */
    uint64_t counter;            /* "protected" by sem: relaxed load + store */
};

static void *own_a(void *arg) WEFT_NO_THREAD_SAFETY_ANALYSIS
{
    struct own_shared *sh = arg;
    weft_mutex_lock(&sh->mu);
    weft_lab_gate_wait(&sh->gate); /* B may now try to unlock it */
    weft_lab_gate_wait(&sh->gate); /* B has tried */
    sh->held_after = weft_mutex_held(&sh->mu);
    weft_mutex_unlock(&sh->mu);
    weft_lab_gate_wait(&sh->gate); /* B waits on the semaphore now */
    weft_lab_sleep_ns(1000000);
    sh->foreign_release = weft_sem_release(&sh->sem);
    return NULL;
}

static void *own_b(void *arg) WEFT_NO_THREAD_SAFETY_ANALYSIS
{
    struct own_shared *sh = arg;
    weft_lab_gate_wait(&sh->gate);
    sh->foreign_unlock = weft_mutex_unlock(&sh->mu);
    sh->foreign_trylock = weft_mutex_trylock(&sh->mu);
    if (sh->foreign_trylock == 0)
        weft_mutex_unlock(&sh->mu);
    weft_lab_gate_wait(&sh->gate);
    weft_lab_gate_wait(&sh->gate);
    sh->signal_wait = weft_sem_timedacquire(&sh->sem, 5000000000LL);
    return NULL;
}

struct own_role {
    struct own_shared *sh;
    bool is_b;
};

static void *own_pair_thread(void *arg)
{
    struct own_role *r = arg;
    return r->is_b ? own_b(r->sh) : own_a(r->sh);
}

/* Steps 1 and 2: A and B, kept in step by a gate. */
static int run_pair(struct own_shared *sh)
{
    struct own_role roles[2] = {{sh, false}, {sh, true}};
    weft_lab_gate_init(&sh->gate, 2);
    weft_sem_init(&sh->sem, 0, "ownership.signal");
    return weft_lab_run_threads(2, own_pair_thread, roles, sizeof roles[0], 20000000000LL);
}

/* Step 3: workers using the over-released binary semaphore as a lock. */
static void *own_worker(void *arg)
{
    struct own_shared *sh = arg;
    for (uint64_t i = 0; i < sh->iters; i++) {
        weft_sem_acquire(&sh->sem);
        /* Relaxed: a statistic of who is inside. */
        unsigned now = __atomic_add_fetch(&sh->inside, 1, __ATOMIC_RELAXED);
        unsigned max = __atomic_load_n(&sh->max_inside, __ATOMIC_RELAXED);
        while (now > max && !__atomic_compare_exchange_n(&sh->max_inside, &max, now, true,
                                                         __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        }
        /* The "protected" update, as plain code would do it: load, then store. */
        uint64_t v = __atomic_load_n(&sh->counter, __ATOMIC_RELAXED);
        weft_lab_sleep_ns(20000);
        __atomic_store_n(&sh->counter, v + 1, __ATOMIC_RELAXED);
        __atomic_fetch_sub(&sh->inside, 1, __ATOMIC_RELAXED);
        weft_sem_release(&sh->sem);
    }
    return NULL;
}

/* The double release, then the workers. Returns the count the bug left. */
static int run_bug(struct own_shared *sh, unsigned *permits_after)
{
    weft_sem_init(&sh->sem, 1, "ownership.binary");
    weft_sem_acquire(&sh->sem);
    weft_sem_release(&sh->sem);
    weft_sem_release(&sh->sem); /* The bug: a second release on an error path. */
    *permits_after = weft_sem_available(&sh->sem);
    sh->inside = sh->max_inside = 0;
    sh->counter = 0;
    return weft_lab_run_threads(WORKERS, own_worker, sh, 0, 30000000000LL);
}

/* The same double unlock on a mutex: refused, exclusion intact. */
static int mutex_double_unlock(void) WEFT_NO_THREAD_SAFETY_ANALYSIS
{
    weft_mutex_t m = WEFT_MUTEX_INIT("ownership.double");
    weft_mutex_lock(&m);
    weft_mutex_unlock(&m);
    return weft_mutex_unlock(&m);
}

static void record(struct weft_lab_ctx *ctx, const struct own_shared *sh, unsigned permits,
                   int double_unlock)
{
    weft_lab_metric(ctx, "mutex_foreign_unlock_result", sh->foreign_unlock);
    weft_lab_metric(ctx, "mutex_foreign_unlock_refused", sh->foreign_unlock == -EPERM);
    weft_lab_metric(ctx, "mutex_still_held", sh->held_after && sh->foreign_trylock == -EBUSY);
    weft_lab_metric(ctx, "mutex_double_unlock_result", double_unlock);
    weft_lab_metric(ctx, "semaphore_foreign_release_allowed",
                    sh->foreign_release == 0 && sh->signal_wait == 0);
    weft_lab_metric(ctx, "bug_permits_after_double_release", permits);
    weft_lab_metric(ctx, "bug_max_in_critical_section", sh->max_inside);
    uint64_t total = sh->iters * WORKERS;
    weft_lab_metric(ctx, "bug_lost_updates", (double)(total - sh->counter));
    static const char *const cols[] = {"result"};
    weft_lab_table(ctx, "who may release", 1, cols);
    weft_lab_row(ctx, "mutex: foreign unlock", (double)sh->foreign_unlock);
    weft_lab_row(ctx, "mutex: double unlock", (double)double_unlock);
    weft_lab_row(ctx, "sem: foreign release", (double)sh->foreign_release);
    weft_lab_row(ctx, "sem: permits after bug", (double)permits);
    weft_lab_row(ctx, "sem: max inside", (double)sh->max_inside);
    weft_lab_row(ctx, "sem: lost updates", (double)(total - sh->counter));
    weft_lab_plot(ctx, WEFT_LAB_PLOT_NONE, 0, false, "", "");
}

static void explain(struct weft_lab_ctx *ctx, const struct own_shared *sh, unsigned permits)
{
    weft_lab_note(ctx, "A thread that does not own the mutex got %s from weft_mutex_unlock, "
                       "and the owner still held it.", weft_strerror(sh->foreign_unlock));
    weft_lab_note(ctx, "A semaphore release from a thread that never acquired returned %d and "
                       "woke the waiting thread: that is signalling.", sh->foreign_release);
    weft_lab_note(ctx, "Used as a lock, a binary semaphore released twice had %u permits, and "
                       "%u threads were inside the critical section at once (%llu updates "
                       "lost); a mutex refuses the second unlock with EPERM.",
                  permits, sh->max_inside,
                  (unsigned long long)(sh->iters * WORKERS - sh->counter));
    weft_lab_note(ctx, "Result codes in the table are negative errno values (EPERM is -%d).",
                  EPERM);
}

static int own_run(struct weft_lab_ctx *ctx)
{
    static struct own_shared sh;
    weft_mutex_init(&sh.mu, "ownership.mutex");
    int rc = run_pair(&sh);
    if (rc != 0)
        return weft_lab_fail(ctx, rc, "signalling threads");
    unsigned permits = 0;
    sh.iters = weft_lab_scale(ctx, 1000);
    if ((rc = run_bug(&sh, &permits)) != 0)
        return weft_lab_fail(ctx, rc, "workers");
    int double_unlock = mutex_double_unlock();
    record(ctx, &sh, permits, double_unlock);
    bool refused = sh.foreign_unlock == -EPERM && sh.held_after && sh.foreign_trylock == -EBUSY;
    bool allowed = sh.foreign_release == 0 && sh.signal_wait == 0;
    weft_lab_verdict(ctx, refused && allowed && sh.max_inside > 1);
    explain(ctx, &sh, permits);
    return 0;
}

const struct weft_lab_experiment weft_lab_ownership = {
    "ownership",
    "A mutex refuses an unlock from a thread that does not own it; a semaphore accepts a "
    "release from any thread, which is signalling, and also lets a stray release break "
    "mutual exclusion.",
    own_run,
};
