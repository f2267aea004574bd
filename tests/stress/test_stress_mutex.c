/*
 * test_stress_mutex - mutual exclusion under contention, seedable.
 *
 *   test_stress_mutex [--threads N] [--iters N] [--broken] [--seed S] [--long]
 *
 * Every thread repeatedly takes the lock (lock, trylock or timedlock, picked
 * at random from the seed) and runs a critical section that
 *   - claims an "inside" word, failing if another thread already claimed it,
 *   - reads a plain counter, dawdles a random while, writes counter + 1,
 *   - checks that the "inside" word still holds its own id, then clears it.
 * Two threads inside at once show up as an overlap; an interleaved
 * read-modify-write shows up as a lost update in the final count.
 *
 * --broken swaps weft_mutex_t for a lock whose acquire is a plain load
 * followed by a separate store (no read-modify-write), the classic broken
 * spinlock. That run succeeds (exit 0) only if the harness catches the
 * violation; it stops at the first one. The broken lock and the critical
 * section use relaxed atomics there, so the race is a logic error the
 * harness must find, not undefined behaviour a sanitizer would report.
 *
 * --long stands for --threads 8 --iters 2000000 (40 times the default
 * sections); options given with it override it.
 *
 * The seed is printed first and in every failure line
 * ("stress_mutex: seed=S: ...", on stderr); options, seeds and failure
 * lines are handled by stress.h.
 */
// ctest default --threads 4 --iters 1000000
// ctest two --threads 2 --iters 1000000 --seed 1
// ctest broken --threads 4 --iters 2000000 --broken
// ctest long_preset --long --iters 20000
// ctest-timeout 120
#include <pthread.h>

#include "stress/stress.h"

enum { MAX_THREADS = 64 };

struct config {
    unsigned threads;
    unsigned iters;
    uint64_t seed;
    bool broken;
};

static struct config cfg = {4, 100000, 0, false};

static const struct stress_opt options[] = {
    STRESS_UINT("--threads", "N", cfg.threads, 2, MAX_THREADS),
    STRESS_UINT("--iters", "N", cfg.iters, 1, UINT32_MAX),
    STRESS_FLAG("--broken", cfg.broken),
    {0},
};

/* --long: twice the threads, 20 times the sections each. */
static const char *const long_preset[] = {"--threads", "8", "--iters", "2000000", NULL};

static const struct stress_prog prog = {"stress_mutex", options, long_preset};

/* ---- shared state -------------------------------------------------------- */

static weft_mutex_t lock = WEFT_MUTEX_INIT("stress");
static uint32_t broken_word; /* atomic (relaxed): the broken lock */

static long counter;    /* protected by the lock under test */
static unsigned inside; /* protected by the lock: id + 1 of the thread inside */
static int violations;  /* atomic */
static int stop;        /* atomic: set at the first violation in broken mode */

/* ---- the broken lock ------------------------------------------------------ */

/*
 * Acquire as "wait until free, then take it": the check and the take are
 * two separate operations, so two threads can both see 0 and both store 1.
 * The short pause between them is the window a preempted thread would have.
 */
static void broken_lock(void)
{
    while (__atomic_load_n(&broken_word, __ATOMIC_RELAXED) != 0)
        if (__atomic_load_n(&stop, __ATOMIC_RELAXED))
            return;
    for (volatile int i = 0; i < 16; i++) {
    }
    __atomic_store_n(&broken_word, 1, __ATOMIC_RELAXED);
}

static void broken_unlock(void)
{
    __atomic_store_n(&broken_word, 0, __ATOMIC_RELEASE);
}

/* ---- helpers -------------------------------------------------------------- */

/* Plain accesses for the real lock (so TSan checks the lock's ordering);
 * relaxed atomics for the broken one (so the race is only logical). */
static long load_l(long *p)
{
    return cfg.broken ? __atomic_load_n(p, __ATOMIC_RELAXED) : *p;
}

static void store_l(long *p, long v)
{
    if (cfg.broken)
        __atomic_store_n(p, v, __ATOMIC_RELAXED);
    else
        *p = v;
}

static unsigned load_u(unsigned *p)
{
    return cfg.broken ? __atomic_load_n(p, __ATOMIC_RELAXED) : *p;
}

static void store_u(unsigned *p, unsigned v)
{
    if (cfg.broken)
        __atomic_store_n(p, v, __ATOMIC_RELAXED);
    else
        *p = v;
}

static void violation(const char *what, unsigned me, unsigned other)
{
    if (__atomic_fetch_add(&violations, 1, __ATOMIC_RELAXED) < 5)
        stress_fail(prog.name, cfg.seed, "%s (thread %u, found %d)", what, me, (int)other - 1);
    if (cfg.broken)
        __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
}

/* ---- the workers ------------------------------------------------------------ */

/* acquire() and release() pick the lock under test at run time, which
 * clang's -Wthread-safety cannot follow: both are exempt from it. */
static WEFT_NO_THREAD_SAFETY_ANALYSIS int acquire(uint64_t *rng)
{
    if (cfg.broken) {
        broken_lock();
        return 0;
    }
    switch (stress_rng_next(rng) % 4) {
    case 0:
        if (weft_mutex_trylock(&lock) == 0)
            return 0;
        weft_mutex_lock(&lock);
        return 0;
    case 1: {
        int r;
        while ((r = weft_mutex_timedlock(&lock, (int64_t)(stress_rng_next(rng) % 20000))) ==
               -ETIMEDOUT) {
        }
        return r;
    }
    default:
        weft_mutex_lock(&lock);
        return 0;
    }
}

static WEFT_NO_THREAD_SAFETY_ANALYSIS void release(void)
{
    if (cfg.broken)
        broken_unlock();
    else if (weft_mutex_unlock(&lock) != 0)
        violation("unlock by the owner failed", 0, 0);
}

static void critical_section(unsigned me, uint64_t *rng)
{
    unsigned was = load_u(&inside);
    if (was != 0)
        violation("overlap on entry", me, was);
    store_u(&inside, me + 1);
    long c = load_l(&counter);
    unsigned dawdle = (unsigned)(stress_rng_next(rng) % 64);
    for (volatile unsigned i = 0; i < dawdle; i++) {
    }
    store_l(&counter, c + 1);
    was = load_u(&inside);
    if (was != me + 1)
        violation("overlap inside", me, was);
    store_u(&inside, 0);
}

struct worker {
    unsigned id;
    pthread_t thread;
    unsigned long done;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uint64_t rng = stress_rng_seed(cfg.seed, w->id + 1);
    for (unsigned i = 0; i < cfg.iters; i++) {
        if (__atomic_load_n(&stop, __ATOMIC_RELAXED))
            break;
        if (acquire(&rng) != 0) {
            violation("timedlock failed", w->id, 0);
            break;
        }
        critical_section(w->id, &rng);
        w->done++;
        release();
    }
    return NULL;
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    cfg.seed = stress_parse(&prog, argc, argv).seed;
    stress_start("stress_mutex: seed=%" PRIu64 " threads=%u iters=%u lock=%s", cfg.seed,
                 cfg.threads, cfg.iters, cfg.broken ? "broken (load-then-store)" : "weft_mutex_t");
    static struct worker w[MAX_THREADS];
    for (unsigned i = 0; i < cfg.threads; i++) {
        w[i].id = i;
        if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0) {
            stress_fail(prog.name, cfg.seed, "pthread_create failed");
            return 1;
        }
    }
    unsigned long total = 0;
    for (unsigned i = 0; i < cfg.threads; i++) {
        pthread_join(w[i].thread, NULL);
        total += w[i].done;
    }
    long final = __atomic_load_n(&counter, __ATOMIC_RELAXED);
    if (final != (long)total) {
        stress_fail(prog.name, cfg.seed, "lost updates: counter %ld, expected %lu", final, total);
        __atomic_fetch_add(&violations, 1, __ATOMIC_RELAXED);
    }
    int v = __atomic_load_n(&violations, __ATOMIC_RELAXED);
    if (cfg.broken) {
        printf("stress_mutex: seed=%llu: broken lock %s (%d violations in %lu sections)\n",
               (unsigned long long)cfg.seed, v ? "caught" : "NOT caught", v, total);
        return v ? 0 : 1;
    }
    if (v == 0 && weft_mutex_destroy(&lock) != 0) {
        stress_fail(prog.name, cfg.seed, "lock still held at the end");
        return 1;
    }
    printf("stress_mutex: seed=%llu: %s: %lu sections, counter %ld\n", (unsigned long long)cfg.seed,
           v ? "FAILED" : "ok", total, final);
    return v ? 1 : 0;
}
