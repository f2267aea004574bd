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
 * held, refused the double unlock and kept one thread at a time inside,
 * the semaphore accepted the foreign release, and after its double release
 * more than one thread was observed in the critical section at once.
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
    bool use_mutex; /* the workers' lock: mu, or the over-released sem */
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

/* Step 3: enter and leave the "critical section" with the lock under test. */
static void own_enter(struct own_shared *sh) WEFT_NO_THREAD_SAFETY_ANALYSIS
{
    if (sh->use_mutex)
        weft_mutex_lock(&sh->mu);
    else
        weft_sem_acquire(&sh->sem);
}

static void own_leave(struct own_shared *sh) WEFT_NO_THREAD_SAFETY_ANALYSIS
{
    if (sh->use_mutex)
        weft_mutex_unlock(&sh->mu);
    else
        weft_sem_release(&sh->sem);
}

static void *own_worker(void *arg)
{
    struct own_shared *sh = arg;
    for (uint64_t i = 0; i < sh->iters; i++) {
        own_enter(sh);
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
        own_leave(sh);
    }
    return NULL;
}

/* What the double release did to one kind of lock. */
struct own_bug {
    int second_release; /* result of the release that had nothing to release */
    unsigned permits;   /* semaphore: count after the bug */
    unsigned max_inside;
    uint64_t lost;
};

/* Take, release, release again (the bug: a second release on an error
 * path); then let the workers rely on the lock. */
static int run_bug(struct own_shared *sh, bool use_mutex,
                   struct own_bug *out) WEFT_NO_THREAD_SAFETY_ANALYSIS
{
    sh->use_mutex = use_mutex;
    weft_sem_init(&sh->sem, 1, "ownership.binary");
    out->permits = 0;
    if (use_mutex) {
        weft_mutex_lock(&sh->mu);
        weft_mutex_unlock(&sh->mu);
        out->second_release = weft_mutex_unlock(&sh->mu);
    } else {
        weft_sem_acquire(&sh->sem);
        weft_sem_release(&sh->sem);
        out->second_release = weft_sem_release(&sh->sem);
        out->permits = weft_sem_available(&sh->sem);
    }
    sh->inside = sh->max_inside = 0;
    sh->counter = 0;
    int rc = weft_lab_run_threads(WORKERS, own_worker, sh, 0, 30000000000LL);
    out->max_inside = sh->max_inside;
    out->lost = sh->iters * WORKERS - sh->counter;
    return rc;
}

static void record(struct weft_lab_ctx *ctx, const struct own_shared *sh, const struct own_bug *mb,
                   const struct own_bug *sb)
{
    weft_lab_metric(ctx, "mutex_foreign_unlock_result", sh->foreign_unlock);
    weft_lab_metric(ctx, "mutex_foreign_unlock_refused", sh->foreign_unlock == -EPERM);
    weft_lab_metric(ctx, "mutex_still_held", sh->held_after && sh->foreign_trylock == -EBUSY);
    weft_lab_metric(ctx, "mutex_double_unlock_result", mb->second_release);
    weft_lab_metric(ctx, "mutex_max_in_critical_section", mb->max_inside);
    weft_lab_metric(ctx, "mutex_lost_updates", (double)mb->lost);
    weft_lab_metric(ctx, "semaphore_foreign_release_result", sh->foreign_release);
    weft_lab_metric(ctx, "semaphore_foreign_release_allowed",
                    sh->foreign_release == 0 && sh->signal_wait == 0);
    weft_lab_metric(ctx, "bug_permits_after_double_release", sb->permits);
    weft_lab_metric(ctx, "bug_max_in_critical_section", sb->max_inside);
    weft_lab_metric(ctx, "bug_lost_updates", (double)sb->lost);
    static const char *const cols[] = {"foreign release", "double release", "max inside",
                                       "lost updates"};
    weft_lab_table(ctx, "release by a non-owner, and a release too many", 4, cols);
    weft_lab_row(ctx, "mutex", (double)sh->foreign_unlock, (double)mb->second_release,
                 (double)mb->max_inside, (double)mb->lost);
    weft_lab_row(ctx, "binary semaphore", (double)sh->foreign_release, (double)sb->second_release,
                 (double)sb->max_inside, (double)sb->lost);
    weft_lab_plot(ctx, WEFT_LAB_PLOT_BARS, 1u << 2, false, "lock",
                  "threads inside the critical section at once");
}

static void explain(struct weft_lab_ctx *ctx, const struct own_shared *sh, const struct own_bug *mb,
                    const struct own_bug *sb)
{
    weft_lab_note(ctx,
                  "A thread that does not own the mutex got %s from weft_mutex_unlock, "
                  "and the owner still held it.",
                  weft_strerror(sh->foreign_unlock));
    weft_lab_note(ctx,
                  "A semaphore release from a thread that never acquired returned %d and "
                  "woke the waiting thread: that is signalling.",
                  sh->foreign_release);
    weft_lab_note(ctx,
                  "Used as a lock, a binary semaphore released twice had %u permits, and "
                  "%u threads were inside the critical section at once (%llu updates "
                  "lost). The mutex refused its second unlock (%s) and kept one thread "
                  "inside at a time (%llu lost).",
                  sb->permits, sb->max_inside, (unsigned long long)sb->lost,
                  weft_strerror(mb->second_release), (unsigned long long)mb->lost);
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
    struct own_bug mb, sb;
    sh.iters = weft_lab_scale(ctx, 1000);
    if ((rc = run_bug(&sh, true, &mb)) != 0 || (rc = run_bug(&sh, false, &sb)) != 0)
        return weft_lab_fail(ctx, rc, "workers");
    record(ctx, &sh, &mb, &sb);
    bool refused = sh.foreign_unlock == -EPERM && sh.held_after && sh.foreign_trylock == -EBUSY &&
                   mb.second_release == -EPERM;
    bool allowed = sh.foreign_release == 0 && sh.signal_wait == 0;
    weft_lab_verdict(ctx, refused && allowed && mb.max_inside == 1 && sb.max_inside > 1);
    explain(ctx, &sh, &mb, &sb);
    return 0;
}

const struct weft_lab_experiment weft_lab_ownership = {
    "ownership",
    "A mutex refuses an unlock from a thread that does not own it; a semaphore accepts a "
    "release from any thread, which is signalling, and also lets a stray release break "
    "mutual exclusion.",
    own_run,
};
