/*
 * Stress test for weft_sem_t: with N permits, never more than N threads are
 * inside at once, the observed maximum reaches N, and no permit is lost or
 * made up (all N are available at the end). With one permit the semaphore
 * is a lock, and a plain counter must see no lost update.
 *
 * Each thread mixes acquire, tryacquire, timedacquire with short deadlines
 * (exercising the timeout path under contention) and timedacquire(FOREVER),
 * chosen by a seeded generator, and yields inside so that holders overlap.
 *
 * `--broken` runs the same harness against a semaphore whose acquire checks
 * the count and decrements it in two steps (a classic check-then-act race):
 * the run exits 0 only if the harness caught it letting too many in.
 *
 * --long stands for --threads 8 --iters 400000 --permits 3 (40 times the
 * default passes); options given with it override it. The seed is printed
 * first; failure lines read "stress_sem: seed=S: ..." on stderr (stress.h).
 *
 * Usage: test_stress_sem [--threads N] [--iters N] [--permits N] [--broken]
 *                        [--seed S] [--long]
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include "stress/stress.h"

// ctest default --threads 4 --iters 100000 --permits 2
// ctest lock --threads 3 --iters 20000 --permits 1 --seed 7
// ctest wide --threads 6 --iters 5000 --permits 4 --seed 11
// ctest broken --broken --threads 4 --iters 200000 --permits 2 --seed 3
// ctest long_preset --long --iters 2000
// ctest-timeout 120

#define WATCHDOG_S 100

struct opts {
    unsigned threads;
    unsigned iters;
    unsigned permits;
    uint64_t seed;
    bool broken;
};

/* The semaphore under test, behind two calls. */
struct sem_ops {
    void (*acquire)(void *sem, uint64_t *rng);
    void (*release)(void *sem);
};

static struct opts opt = {4, 20000, 2, 0, false};

static const struct stress_opt options[] = {
    STRESS_UINT("--threads", "N", opt.threads, 1, 256),
    STRESS_UINT("--iters", "N", opt.iters, 0, 100000000),
    STRESS_UINT("--permits", "N", opt.permits, 1, 1000),
    STRESS_FLAG("--broken", opt.broken),
    {0},
};

/* --long: twice the threads, one more permit, 20 times the passes each. */
static const char *const long_preset[] = {"--threads", "8", "--iters", "400000",
                                          "--permits", "3", NULL};

static const struct stress_prog prog = {"stress_sem", options, long_preset};
static int inside;     /* atomic: threads holding a permit now */
static int max_inside; /* atomic: the largest `inside` seen */
static int violations; /* atomic */
static int stop;       /* atomic: set once a broken run is caught */
static unsigned ready; /* atomic: workers started; they begin together */
static long plain;     /* protected by the semaphore when permits == 1 */

/* ---- weft's semaphore ----------------------------------------------------- */

static void weft_acquire(void *sem, uint64_t *rng)
{
    weft_sem_t *s = sem;
    switch (stress_xorshift64(rng) % 8) {
    case 0:
        while (weft_sem_tryacquire(s) != 0)
            sched_yield();
        break;
    case 1:
    case 2:
        while (weft_sem_timedacquire(s, (int64_t)(stress_xorshift64(rng) % 50000)) != 0)
            ;
        break;
    case 3:
        if (weft_sem_timedacquire(s, WEFT_FOREVER) != 0)
            __atomic_fetch_add(&violations, 1, __ATOMIC_RELAXED);
        break;
    default:
        weft_sem_acquire(s);
    }
}

static void weft_release(void *sem)
{
    if (weft_sem_release(sem) != 0)
        __atomic_fetch_add(&violations, 1, __ATOMIC_RELAXED);
}

/* ---- the deliberately broken semaphore ------------------------------------ */

/* Checks the count, then decrements it: two threads can both see 1. */
static void broken_acquire(void *sem, uint64_t *rng)
{
    int *count = sem;
    while (__atomic_load_n(count, __ATOMIC_ACQUIRE) <= 0)
        sched_yield();
    if (stress_xorshift64(rng) % 2)
        sched_yield(); /* widen the window between check and act */
    __atomic_fetch_sub(count, 1, __ATOMIC_ACQ_REL);
}

static void broken_release(void *sem)
{
    __atomic_fetch_add((int *)sem, 1, __ATOMIC_ACQ_REL);
}

/* ---- the harness ---------------------------------------------------------- */

struct worker {
    const struct sem_ops *ops;
    void *sem;
    unsigned id;
};

static void note_inside(int n)
{
    int m = __atomic_load_n(&max_inside, __ATOMIC_RELAXED);
    while (n > m && !__atomic_compare_exchange_n(&max_inside, &m, n, true, __ATOMIC_RELAXED,
                                                 __ATOMIC_RELAXED))
        ;
    if (n > (int)opt.permits && __atomic_fetch_add(&violations, 1, __ATOMIC_RELAXED) == 0)
        stress_fail(prog.name, opt.seed, "%d threads inside a semaphore of %u permits", n,
                    opt.permits);
}

/* One pass through the semaphore: enter, check, linger, leave. */
static void one_pass(struct worker *w, uint64_t *rng)
{
    w->ops->acquire(w->sem, rng);
    int n = __atomic_add_fetch(&inside, 1, __ATOMIC_RELAXED);
    note_inside(n);
    if (opt.permits == 1 && !opt.broken)
        plain++;
    if (stress_xorshift64(rng) % 4 == 0)
        sched_yield();
    else
        for (unsigned i = (unsigned)(stress_xorshift64(rng) % 64); i > 0; i--)
            __asm__ __volatile__("" ::: "memory");
    __atomic_sub_fetch(&inside, 1, __ATOMIC_RELAXED);
    w->ops->release(w->sem);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uint64_t rng = opt.seed ^ (0x9e3779b97f4a7c15ull * (w->id + 1));
    if (rng == 0)
        rng = 1;
    /* Start together, or the first thread may be done before the last one
     * has been created, and nothing would overlap. */
    __atomic_add_fetch(&ready, 1, __ATOMIC_RELAXED);
    while (__atomic_load_n(&ready, __ATOMIC_RELAXED) < opt.threads)
        sched_yield();
    for (unsigned i = 0; i < opt.iters; i++) {
        if (__atomic_load_n(&stop, __ATOMIC_RELAXED))
            break;
        one_pass(w, &rng);
        if (opt.broken && __atomic_load_n(&violations, __ATOMIC_RELAXED) != 0)
            __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void run(const struct sem_ops *ops, void *sem)
{
    pthread_t *t = calloc(opt.threads, sizeof *t);
    struct worker *w = calloc(opt.threads, sizeof *w);
    if (t == NULL || w == NULL) {
        stress_fail(prog.name, opt.seed, "out of memory");
        exit(1);
    }
    for (unsigned i = 0; i < opt.threads; i++) {
        w[i] = (struct worker){ops, sem, i};
        if (pthread_create(&t[i], NULL, worker_main, &w[i]) != 0) {
            stress_fail(prog.name, opt.seed, "pthread_create failed");
            exit(1);
        }
    }
    for (unsigned i = 0; i < opt.threads; i++)
        pthread_join(t[i], NULL);
    free(t);
    free(w);
}

/* A failure found by the final checks: reported; returns 1. */
__attribute__((format(printf, 1, 2))) static int report_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    stress_vfail(prog.name, opt.seed, fmt, ap);
    va_end(ap);
    return 1;
}

static int check_weft(weft_sem_t *s)
{
    int bad = 0;
    unsigned want_max = opt.threads < opt.permits ? opt.threads : opt.permits;
    if (violations != 0)
        bad = report_fail("%d violations", violations);
    if ((unsigned)max_inside != want_max)
        bad = report_fail("at most %d inside, expected %u", max_inside, want_max);
    if (weft_sem_available(s) != opt.permits)
        bad = report_fail("%u permits at the end, expected %u", weft_sem_available(s), opt.permits);
    if (opt.permits == 1 && plain != (long)opt.threads * opt.iters)
        bad = report_fail("counter %ld, expected %ld (lost updates)", plain,
                          (long)opt.threads * opt.iters);
    if (weft_sem_destroy(s) != 0)
        bad = report_fail("destroy failed");
    return bad ? 1 : 0;
}

static void watchdog(int sig)
{
    (void)sig;
    char buf[96];
    int n = snprintf(buf, sizeof buf, "%s: seed=%" PRIu64 ": no progress in %d s (hang?)\n",
                     prog.name, opt.seed, WATCHDOG_S);
    ssize_t w = write(STDERR_FILENO, buf, (size_t)n);
    (void)w;
    _exit(1);
}

int main(int argc, char **argv)
{
    opt.seed = stress_parse(&prog, argc, argv).seed;
    stress_start("seed=%" PRIu64 " threads=%u iters=%u permits=%u%s", opt.seed, opt.threads,
                 opt.iters, opt.permits, opt.broken ? " broken" : "");
    signal(SIGALRM, watchdog);
    alarm(WATCHDOG_S);
    if (opt.broken) {
        static const struct sem_ops ops = {broken_acquire, broken_release};
        int count = (int)opt.permits;
        run(&ops, &count);
        if (violations == 0) {
            printf("seed=%" PRIu64 ": broken semaphore NOT caught\n", opt.seed);
            return 1;
        }
        printf("broken semaphore caught (at most %d inside, %u permits)\n", max_inside,
               opt.permits);
        return 0;
    }
    static const struct sem_ops ops = {weft_acquire, weft_release};
    weft_sem_t s;
    if (weft_sem_init(&s, opt.permits, "stress") != 0)
        return 1;
    run(&ops, &s);
    int r = check_weft(&s);
    printf("%s: at most %d inside of %u permits\n", r ? "FAIL" : "ok", max_inside, opt.permits);
    return r;
}
