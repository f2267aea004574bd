/*
 * Stress test for weft_rwlock_t: a writer is never inside together with
 * anyone else, several readers are inside together (the observed maximum
 * exceeds 1 when there are at least two threads), readers always see a
 * consistent record (every writer updates all its fields, yielding half-way),
 * and no write is lost.
 *
 * Each thread picks read or write by a seeded generator (--writes percent),
 * and the call among rdlock/tryrdlock/timedrdlock with short deadlines/
 * timedrdlock(FOREVER) and their write counterparts.
 *
 * `--broken` runs the same harness against an rwlock whose wrlock ignores
 * the readers (it only excludes other writers): the run exits 0 only if the
 * harness caught a writer inside together with readers. The broken run keeps
 * the shared record in relaxed atomics, so that ThreadSanitizer does not
 * report the (intended) overlap as a data race; the real run uses plain
 * memory, so TSan also checks that weft's lock orders it.
 *
 * --long stands for --threads 6 --iters 200000 (15 times the default
 * passes); options given with it override it. The seed is printed first;
 * failure lines read "stress_rwlock: seed=S: ..." on stderr (stress.h).
 *
 * Usage: test_stress_rwlock [--threads N] [--iters N] [--writes PCT]
 *                           [--broken] [--seed S] [--long]
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include "stress/stress.h"

// ctest default --threads 4 --iters 100000
// ctest writers --threads 4 --iters 10000 --writes 60 --seed 5
// ctest pair --threads 2 --iters 20000 --writes 10 --seed 9
// ctest broken --broken --threads 4 --iters 200000 --seed 3
// ctest long_preset --long --iters 2000
// ctest-timeout 120

#define WATCHDOG_S 100
#define FIELDS 8

struct opts {
    unsigned threads;
    unsigned iters;
    unsigned writes; /* percent of passes that write */
    uint64_t seed;
    bool broken;
};

/* The lock under test, behind four calls. */
struct rw_ops {
    void (*rdlock)(void *lock, uint64_t *rng);
    void (*wrlock)(void *lock, uint64_t *rng);
    void (*rdunlock)(void *lock);
    void (*wrunlock)(void *lock);
};

static struct opts opt = {4, 20000, 20, 0, false};

static const struct stress_opt options[] = {
    STRESS_UINT("--threads", "N", opt.threads, 1, 256),
    STRESS_UINT("--iters", "N", opt.iters, 0, 100000000),
    STRESS_UINT("--writes", "PCT", opt.writes, 0, 100),
    STRESS_FLAG("--broken", opt.broken),
    {0},
};

/* --long: half as many threads again, 10 times the passes each. */
static const char *const long_preset[] = {"--threads", "6", "--iters", "200000", NULL};

static const struct stress_prog prog = {"stress_rwlock", options, long_preset};
static int readers;         /* atomic: readers inside now */
static int writers;         /* atomic: writers inside now */
static int max_readers;     /* atomic */
static int violations;      /* atomic */
static int stop;            /* atomic: set once a broken run is caught */
static unsigned ready;      /* atomic: workers started; they begin together */
static long writes_done;    /* atomic: completed write passes */
static long record[FIELDS]; /* protected by the lock (atomics in --broken) */

static void violation(const char *what, int r, int w)
{
    if (__atomic_fetch_add(&violations, 1, __ATOMIC_RELAXED) == 0)
        stress_fail(prog.name, opt.seed, "%s (readers %d, writers %d)", what, r, w);
}

/* ---- weft's rwlock -------------------------------------------------------- */

WEFT_NO_THREAD_SAFETY_ANALYSIS static void weft_rd(void *lock, uint64_t *rng)
{
    weft_rwlock_t *rw = lock;
    switch (stress_xorshift64(rng) % 8) {
    case 0:
        while (weft_rwlock_tryrdlock(rw) != 0)
            sched_yield();
        break;
    case 1:
    case 2:
        while (weft_rwlock_timedrdlock(rw, (int64_t)(stress_xorshift64(rng) % 50000)) != 0)
            ;
        break;
    case 3:
        if (weft_rwlock_timedrdlock(rw, WEFT_FOREVER) != 0)
            violation("timedrdlock(FOREVER) failed", 0, 0);
        break;
    default:
        weft_rwlock_rdlock(rw);
    }
}

WEFT_NO_THREAD_SAFETY_ANALYSIS static void weft_wr(void *lock, uint64_t *rng)
{
    weft_rwlock_t *rw = lock;
    switch (stress_xorshift64(rng) % 8) {
    case 0:
        while (weft_rwlock_trywrlock(rw) != 0)
            sched_yield();
        break;
    case 1:
    case 2:
        while (weft_rwlock_timedwrlock(rw, (int64_t)(stress_xorshift64(rng) % 100000)) != 0)
            ;
        break;
    case 3:
        if (weft_rwlock_timedwrlock(rw, WEFT_FOREVER) != 0)
            violation("timedwrlock(FOREVER) failed", 0, 0);
        break;
    default:
        weft_rwlock_wrlock(rw);
    }
}

WEFT_NO_THREAD_SAFETY_ANALYSIS static void weft_unlock(void *lock)
{
    int r = weft_rwlock_unlock(lock);
    if (r != 0)
        violation(weft_strerror(r), 0, 0);
}

/* ---- the deliberately broken rwlock --------------------------------------- */

struct broken_rw {
    int readers; /* atomic */
    int writer;  /* atomic */
};

static void broken_rd(void *lock, uint64_t *rng)
{
    struct broken_rw *b = lock;
    (void)rng;
    for (;;) {
        while (__atomic_load_n(&b->writer, __ATOMIC_ACQUIRE))
            sched_yield();
        __atomic_fetch_add(&b->readers, 1, __ATOMIC_SEQ_CST);
        if (!__atomic_load_n(&b->writer, __ATOMIC_SEQ_CST))
            return;
        __atomic_fetch_sub(&b->readers, 1, __ATOMIC_RELEASE);
    }
}

/* The bug: excludes other writers, but never waits for the readers. */
static void broken_wr(void *lock, uint64_t *rng)
{
    struct broken_rw *b = lock;
    (void)rng;
    int zero = 0;
    while (!__atomic_compare_exchange_n(&b->writer, &zero, 1, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_RELAXED)) {
        zero = 0;
        sched_yield();
    }
}

static void broken_rdunlock(void *lock)
{
    __atomic_fetch_sub(&((struct broken_rw *)lock)->readers, 1, __ATOMIC_RELEASE);
}

static void broken_wrunlock(void *lock)
{
    __atomic_store_n(&((struct broken_rw *)lock)->writer, 0, __ATOMIC_RELEASE);
}

/* ---- the shared record ---------------------------------------------------- */

static long field_get(int i)
{
    return opt.broken ? __atomic_load_n(&record[i], __ATOMIC_RELAXED) : record[i];
}

static void field_set(int i, long v)
{
    if (opt.broken)
        __atomic_store_n(&record[i], v, __ATOMIC_RELAXED);
    else
        record[i] = v;
}

/* Let others run inside the critical section now and then, so that holders
 * overlap (readers with readers, and with a broken lock, with writers). */
static void linger(uint64_t *rng)
{
    if (stress_xorshift64(rng) % 4 == 0)
        sched_yield();
    else
        for (unsigned i = (unsigned)(stress_xorshift64(rng) % 64); i > 0; i--)
            __asm__ __volatile__("" ::: "memory");
}

static void read_pass(const struct rw_ops *ops, void *lock, uint64_t *rng)
{
    ops->rdlock(lock, rng);
    int r = __atomic_add_fetch(&readers, 1, __ATOMIC_SEQ_CST);
    int w = __atomic_load_n(&writers, __ATOMIC_SEQ_CST);
    if (w != 0)
        violation("a reader got in with a writer", r, w);
    int m = __atomic_load_n(&max_readers, __ATOMIC_RELAXED);
    while (r > m && !__atomic_compare_exchange_n(&max_readers, &m, r, true, __ATOMIC_RELAXED,
                                                 __ATOMIC_RELAXED))
        ;
    long first = field_get(0);
    linger(rng);
    for (int i = 1; i < FIELDS; i++)
        if (field_get(i) != first)
            violation("a reader saw a half-written record", r, w);
    __atomic_sub_fetch(&readers, 1, __ATOMIC_SEQ_CST);
    ops->rdunlock(lock);
}

static void write_pass(const struct rw_ops *ops, void *lock, uint64_t *rng)
{
    ops->wrlock(lock, rng);
    int w = __atomic_add_fetch(&writers, 1, __ATOMIC_SEQ_CST);
    int r = __atomic_load_n(&readers, __ATOMIC_SEQ_CST);
    if (w != 1 || r != 0)
        violation("a writer got in with others", r, w);
    long v = field_get(0) + 1;
    for (int i = 0; i < FIELDS; i++) {
        field_set(i, v);
        if (i == FIELDS / 2)
            linger(rng);
    }
    __atomic_fetch_add(&writes_done, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&writers, 1, __ATOMIC_SEQ_CST);
    ops->wrunlock(lock);
}

/* ---- the harness ---------------------------------------------------------- */

struct worker {
    const struct rw_ops *ops;
    void *lock;
    unsigned id;
};

static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    uint64_t rng = opt.seed ^ (0x9e3779b97f4a7c15ull * (wk->id + 1));
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
        if (stress_xorshift64(&rng) % 100 < opt.writes)
            write_pass(wk->ops, wk->lock, &rng);
        else
            read_pass(wk->ops, wk->lock, &rng);
        if (opt.broken && __atomic_load_n(&violations, __ATOMIC_RELAXED) != 0)
            __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void run(const struct rw_ops *ops, void *lock)
{
    pthread_t *t = calloc(opt.threads, sizeof *t);
    struct worker *w = calloc(opt.threads, sizeof *w);
    if (t == NULL || w == NULL) {
        stress_fail(prog.name, opt.seed, "out of memory");
        exit(1);
    }
    for (unsigned i = 0; i < opt.threads; i++) {
        w[i] = (struct worker){ops, lock, i};
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

/* The run's readers may never have overlapped (two threads scheduled one
 * after the other on a busy machine). Then ask directly: while this thread
 * holds a read lock, can another thread take one too? */
static void *probe_reader(void *arg)
{
    weft_rwlock_t *rw = arg;
    int r = weft_rwlock_timedrdlock(rw, 5000000000ll);
    if (r == 0)
        weft_rwlock_unlock(rw);
    return (void *)(intptr_t)r;
}

static bool readers_share(weft_rwlock_t *rw)
{
    pthread_t t;
    void *r = (void *)(intptr_t)-1;
    weft_rwlock_rdlock(rw);
    if (pthread_create(&t, NULL, probe_reader, rw) == 0)
        pthread_join(t, &r);
    weft_rwlock_unlock(rw);
    return (intptr_t)r == 0;
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

static int check_weft(weft_rwlock_t *rw)
{
    int bad = 0;
    if (violations != 0)
        bad = report_fail("%d violations", violations);
    if (opt.threads >= 2 && opt.writes < 100 && max_readers < 2 && !readers_share(rw))
        bad = report_fail("readers never shared the lock");
    for (int i = 0; i < FIELDS; i++)
        if (record[i] != writes_done)
            bad = report_fail("field %d is %ld after %ld writes", i, record[i], writes_done);
    if (weft_rwlock_destroy(rw) != 0)
        bad = report_fail("destroy failed: the lock is still held");
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
    stress_start("seed=%" PRIu64 " threads=%u iters=%u writes=%u%%%s", opt.seed, opt.threads,
                 opt.iters, opt.writes, opt.broken ? " broken" : "");
    signal(SIGALRM, watchdog);
    alarm(WATCHDOG_S);
    if (opt.broken) {
        static const struct rw_ops ops = {broken_rd, broken_wr, broken_rdunlock, broken_wrunlock};
        struct broken_rw b = {0, 0};
        run(&ops, &b);
        if (violations == 0) {
            printf("seed=%" PRIu64 ": broken rwlock NOT caught\n", opt.seed);
            return 1;
        }
        printf("broken rwlock caught\n");
        return 0;
    }
    static const struct rw_ops ops = {weft_rd, weft_wr, weft_unlock, weft_unlock};
    weft_rwlock_t rw;
    if (weft_rwlock_init(&rw, "stress") != 0)
        return 1;
    run(&ops, &rw);
    int r = check_weft(&rw);
    printf("%s: %ld writes, at most %d readers together\n", r ? "FAIL" : "ok", writes_done,
           max_readers);
    return r;
}
