/*
 * semaphore.c - the `semaphore` experiment: a counting semaphore with N
 * permits caps the work in flight at exactly N (a mutex caps it at 1, no
 * cap lets every worker in); a forgotten release leaks a permit, and after
 * N leaks the semaphore is exhausted and every acquire waits in vain.
 *
 * Work in flight is counted with an atomic counter around a short sleep (so
 * the workers overlap even on one CPU); the maximum is kept with a CAS.
 * The leak run has every worker "forget" the release on every fourth task,
 * as an early return on an error path would; workers acquire with a timed
 * wait, so exhaustion shows as timeouts instead of a hang.
 *
 * The leak run has the check layer on: its permit ledger reports the
 * leaked permits (which thread holds each, acquired where) when a leaking
 * worker exits and when an acquire has waited past WEFT_CHECK_SEM_WAIT_MS
 * (set to 50 ms here unless the environment says otherwise).
 *
 * Verdict: reproduced when the observed maximum in flight equals N with the
 * semaphore and 1 with the mutex, the leak run ended with no permit left
 * and at least one acquire timing out, and the check layer reported it.
 */
#include <stdio.h>
#include <stdlib.h>

#include "weft.h"
#include "lab/lab.h"

#define PERMITS 3u
#define WORKERS 8u

enum cap { CAP_SEM, CAP_MUTEX, CAP_NONE, CAP_COUNT };
static const char *const cap_name[CAP_COUNT] = {"semaphore", "mutex", "unlimited"};

struct sem_shared {
    enum cap cap;
    weft_sem_t sem;
    weft_mutex_t mu;
    uint64_t tasks, work_ns;
    int64_t wait_ns;         /* leak run: how long an acquire waits */
    bool leak;               /* forget the release on every fourth task */
    unsigned in_flight;      /* atomic */
    unsigned max_seen;       /* atomic */
    uint64_t timeouts, done; /* atomic */
};

static void note_entry(struct sem_shared *sh)
{
    /* Relaxed: a statistic; the semaphore itself orders the real work. */
    unsigned now = __atomic_add_fetch(&sh->in_flight, 1, __ATOMIC_RELAXED);
    unsigned max = __atomic_load_n(&sh->max_seen, __ATOMIC_RELAXED);
    while (now > max && !__atomic_compare_exchange_n(&sh->max_seen, &max, now, true,
                                                     __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

static void do_work(struct sem_shared *sh)
{
    note_entry(sh);
    weft_lab_sleep_ns(sh->work_ns);
    __atomic_fetch_sub(&sh->in_flight, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&sh->done, 1, __ATOMIC_RELAXED);
}

/* One task under the cap. false when the semaphore could not be had. */
static bool task(struct sem_shared *sh, uint64_t k) WEFT_NO_THREAD_SAFETY_ANALYSIS
{
    if (sh->cap == CAP_MUTEX) {
        weft_mutex_lock(&sh->mu);
        do_work(sh);
        weft_mutex_unlock(&sh->mu);
    } else if (sh->cap == CAP_NONE) {
        do_work(sh);
    } else {
        if (weft_sem_timedacquire(&sh->sem, sh->wait_ns) != 0) {
            __atomic_fetch_add(&sh->timeouts, 1, __ATOMIC_RELAXED);
            return false;
        }
        do_work(sh);
        if (sh->leak && k % 4 == 3)
            return true; /* The bug: an early return that forgets the release. */
        weft_sem_release(&sh->sem);
    }
    return true;
}

static void *sem_thread(void *arg)
{
    struct sem_shared *sh = arg;
    for (uint64_t k = 0; k < sh->tasks; k++)
        if (!task(sh, k))
            break;
    return NULL;
}

static int run_cap(struct sem_shared *sh, enum cap cap, bool leak)
{
    sh->cap = cap;
    sh->leak = leak;
    sh->in_flight = sh->max_seen = 0;
    sh->timeouts = sh->done = 0;
    /* weft_lab_broken(): one permit too many, for the tests' self-check. */
    weft_sem_init(&sh->sem, PERMITS + (weft_lab_broken() ? 1 : 0), "semaphore.permits");
    return weft_lab_run_threads(WORKERS, sem_thread, sh, 0, 30000000000LL);
}

static void explain(struct weft_lab_ctx *ctx, const unsigned max[], const struct sem_shared *sh,
                    unsigned reports)
{
    weft_lab_note(ctx,
                  "%u workers: at most %u ran at once under a %u-permit semaphore, %u "
                  "under a mutex, %u with no cap.",
                  WORKERS, max[CAP_SEM], PERMITS, max[CAP_MUTEX], max[CAP_NONE]);
    weft_lab_note(ctx,
                  "With a release forgotten on every fourth task, the permits ran out "
                  "after %llu tasks: %u left, and %llu acquires timed out instead of "
                  "hanging forever.",
                  (unsigned long long)sh->done, weft_sem_available(&sh->sem),
                  (unsigned long long)sh->timeouts);
    if (reports > 0)
        weft_lab_note(ctx,
                      "The check layer's permit ledger made %u report%s (shown above): "
                      "which thread holds each permit and where it acquired it.",
                      reports, reports == 1 ? "" : "s");
    else
        weft_lab_note(ctx, "The check layer made no report about the leaked permits.");
}

/* The leak run, with the check layer on and its exhaustion threshold below
 * our acquire timeout, so the ledger is reported while workers wait. */
static int run_leak(struct weft_lab_ctx *ctx, struct sem_shared *sh)
{
    setenv("WEFT_CHECK_SEM_WAIT_MS", "50", 0); /* a user's own setting wins */
    sh->wait_ns = 200000000;
    weft_lab_check_begin(ctx);
    int rc = run_cap(sh, CAP_SEM, true);
    if (rc != 0)
        return weft_lab_fail(ctx, rc, "leak run");
    weft_lab_row(ctx, "leaking semaphore", (double)sh->max_seen, (double)sh->done);
    weft_lab_metric(ctx, "leak_tasks_done", (double)sh->done);
    weft_lab_metric(ctx, "leak_permits_left", weft_sem_available(&sh->sem));
    weft_lab_metric(ctx, "leak_timeouts", (double)sh->timeouts);
    return 0;
}

static int sem_run(struct weft_lab_ctx *ctx)
{
    static struct sem_shared sh;
    weft_mutex_init(&sh.mu, "semaphore.mutex");
    sh.tasks = weft_lab_scale(ctx, 200);
    sh.work_ns = 200000;
    sh.wait_ns = WEFT_FOREVER;
    unsigned max[CAP_COUNT];
    static const char *const cols[] = {"max in flight", "tasks done"};
    weft_lab_table(ctx, "work in flight at once", 2, cols);
    for (int c = 0; c < CAP_COUNT; c++) {
        int rc = run_cap(&sh, (enum cap)c, false);
        if (rc != 0)
            return weft_lab_fail(ctx, rc, "workers under %s", cap_name[c]);
        max[c] = sh.max_seen;
        char key[64];
        snprintf(key, sizeof key, "max_in_flight_%s", cap_name[c]);
        weft_lab_metric(ctx, key, max[c]);
        weft_lab_row(ctx, cap_name[c], (double)max[c], (double)sh.done);
    }
    int rc = run_leak(ctx, &sh);
    if (rc != 0)
        return rc;
    unsigned reports = weft_lab_check_collect(ctx);
    weft_lab_plot(ctx, WEFT_LAB_PLOT_BARS, 1u, false, "cap", "max in flight");
    weft_lab_metric(ctx, "permits", PERMITS);
    weft_lab_metric(ctx, "workers", WORKERS);
    weft_lab_verdict(ctx, max[CAP_SEM] == PERMITS && max[CAP_MUTEX] == 1 &&
                              weft_sem_available(&sh.sem) == 0 && sh.timeouts >= 1 && reports >= 1);
    explain(ctx, max, &sh, reports);
    return 0;
}

const struct weft_lab_experiment weft_lab_semaphore = {
    "semaphore",
    "A counting semaphore with N permits caps the work in flight at N (a mutex at 1); a "
    "forgotten release leaks permits until none are left and every acquire waits, and the "
    "check layer names the holders and where they acquired.",
    sem_run,
};
