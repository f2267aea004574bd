/*
 * test_stress_cond - a bounded producer/consumer queue under one weft_mutex_t
 * and two weft_cond_t (not_full, not_empty), seedable.
 *
 *   test_stress_cond [--threads N] [--iters N] [--capacity N] [--wait-ms N]
 *                    [--broken] [--seed S] [--long]
 *
 * N producers each push --iters items (producer id, sequence number); N
 * consumers pop them. Checked, under the queue's mutex:
 *   - every item arrives exactly once (a "seen" table);
 *   - each consumer sees every producer's items in increasing order (the
 *     queue is FIFO, so anything else is corruption);
 *   - the total matches.
 * Lost wake-ups: every wait is a timed wait of --wait-ms. A wait that times
 * out while its predicate is already true (a full queue's consumer found
 * items, an empty queue's producer found room) means the thread slept
 * through the change it waited for, because the thread that made the change
 * signalled after making it. With one producer and one consumer that is
 * exactly a lost wake-up; with more it is one whenever the other threads
 * had --wait-ms to run, which is the default's generous 5 s. A watchdog
 * also fails the run if no item moves for 4 x --wait-ms.
 *
 * --broken makes weft_cond_signal() a coin toss: half the signals (chosen by
 * the seed) are dropped, the "forgot to signal on one path" bug. The run
 * succeeds (exit 0) only if the harness reports the lost wake-up.
 *
 * --long stands for --threads 4 --iters 400000 (8 times the default items);
 * options given with it override it.
 *
 * The seed is printed first and in every failure line
 * ("stress_cond: seed=S: ...", on stderr); options, seeds and failure
 * lines are handled by stress.h.
 */
// ctest default --threads 2 --iters 200000
// ctest one_to_one --threads 1 --iters 50000 --capacity 1 --seed 7
// ctest broken --threads 1 --iters 200000 --capacity 1 --wait-ms 200 --broken
// ctest broken_many --threads 3 --iters 200000 --capacity 4 --wait-ms 200 --broken
// ctest long_preset --long --iters 2000
// ctest-timeout 120
#include <pthread.h>

#include "stress/stress.h"

enum { MAX_THREADS = 32, MAX_CAPACITY = 4096 };

struct config {
    unsigned threads;
    unsigned iters;
    uint64_t seed;
    unsigned capacity;
    unsigned wait_ms;
    bool broken;
};

static struct config cfg = {2, 100000, 0, 8, 5000, false};

static const struct stress_opt options[] = {
    STRESS_UINT("--threads", "N", cfg.threads, 1, MAX_THREADS),
    STRESS_UINT("--iters", "N", cfg.iters, 1, UINT32_MAX),
    STRESS_UINT("--capacity", "N", cfg.capacity, 1, MAX_CAPACITY),
    STRESS_UINT("--wait-ms", "N", cfg.wait_ms, 1, 86400000),
    STRESS_FLAG("--broken", cfg.broken),
    {0},
};

/* --long: twice the producers and consumers, 4 times the items each. */
static const char *const long_preset[] = {"--threads", "4", "--iters", "400000", NULL};

static const struct stress_prog prog = {"stress_cond", options, long_preset};

struct item {
    unsigned producer;
    unsigned long seq;
};

/* The queue. Everything below is protected by q.m unless marked atomic. */
static struct {
    weft_mutex_t m;
    weft_cond_t not_full;
    weft_cond_t not_empty;
    struct item ring[MAX_CAPACITY];
    unsigned head, count;
    unsigned long consumed;
    unsigned char *seen; /* [producer * iters + seq]: times delivered */
    int stop;            /* atomic: a failure was reported; everyone leaves */
    int failures;        /* atomic */
    unsigned long moved; /* atomic: items pushed or popped, for the watchdog */
} q = {
    .m = WEFT_MUTEX_INIT("queue"),
    .not_full = WEFT_COND_INIT("queue.not_full"),
    .not_empty = WEFT_COND_INIT("queue.not_empty"),
};

/* Reports a failure (the first five) and stops the run. */
__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
    if (__atomic_fetch_add(&q.failures, 1, __ATOMIC_RELAXED) < 5) {
        va_list ap;
        va_start(ap, fmt);
        stress_vfail(prog.name, cfg.seed, fmt, ap);
        va_end(ap);
    }
    __atomic_store_n(&q.stop, 1, __ATOMIC_RELAXED);
}

static bool stopping(void)
{
    return __atomic_load_n(&q.stop, __ATOMIC_RELAXED) != 0;
}

/* The signal under test; --broken drops it half the time. */
static void signal_cv(weft_cond_t *c, uint64_t *rng)
{
    if (cfg.broken && (stress_rng_next(rng) & 1))
        return;
    if (weft_cond_signal(c) != 0)
        fail("weft_cond_signal failed (thread %u, %lu)", 0u, 0ul);
}

/*
 * Wait on `c` until pred() holds or the run stops. Returns with q.m held.
 * A timeout that finds the predicate true is a lost wake-up.
 */
static void wait_for(weft_cond_t *c, bool (*pred)(void), const char *what, unsigned who)
    WEFT_REQUIRES(q.m)
{
    while (!pred() && !stopping()) {
        int r = weft_cond_timedwait(c, &q.m, cfg.wait_ms * 1000000LL);
        if (r == -ETIMEDOUT && pred()) {
            stress_fail(prog.name, cfg.seed,
                        "lost wake-up: %s %u slept %u ms although its condition held", what, who,
                        cfg.wait_ms);
            fail("lost wake-up (thread %u, after %lu items)", who, q.consumed);
        } else if (r != 0 && r != -ETIMEDOUT) {
            fail("weft_cond_timedwait failed (thread %u, rc %lu)", who, (unsigned long)-r);
        }
    }
}

static bool has_room(void) WEFT_REQUIRES(q.m)
{
    return q.count < cfg.capacity;
}

static bool has_item(void) WEFT_REQUIRES(q.m)
{
    return q.count > 0 || q.consumed == (unsigned long)cfg.threads * cfg.iters;
}

/* ---- producers and consumers -------------------------------------------- */

static void *producer_main(void *arg)
{
    unsigned me = (unsigned)(uintptr_t)arg;
    uint64_t rng = stress_rng_seed(cfg.seed, 2 * me + 1);
    for (unsigned long seq = 0; seq < cfg.iters && !stopping(); seq++) {
        weft_mutex_lock(&q.m);
        wait_for(&q.not_full, has_room, "producer", me);
        if (stopping()) {
            (void)weft_mutex_unlock(&q.m);
            break;
        }
        q.ring[(q.head + q.count) % cfg.capacity] = (struct item){me, seq};
        q.count++;
        __atomic_fetch_add(&q.moved, 1, __ATOMIC_RELAXED);
        /* Signal inside or outside the lock: both are correct uses. */
        bool inside = stress_rng_next(&rng) & 2;
        if (inside)
            signal_cv(&q.not_empty, &rng);
        (void)weft_mutex_unlock(&q.m);
        if (!inside)
            signal_cv(&q.not_empty, &rng);
    }
    return NULL;
}

static void check_item(struct item it, unsigned me, unsigned long *last) WEFT_REQUIRES(q.m)
{
    if (it.producer >= cfg.threads || it.seq >= cfg.iters) {
        fail("corrupt item at consumer %u (seq %lu)", me, it.seq);
        return;
    }
    if (q.seen[(size_t)it.producer * cfg.iters + it.seq]++ != 0)
        fail("item delivered twice (producer %u, seq %lu)", it.producer, it.seq);
    if (last[it.producer] != 0 && it.seq < last[it.producer])
        fail("out of order (producer %u, seq %lu)", it.producer, it.seq);
    last[it.producer] = it.seq + 1;
}

static void *consumer_main(void *arg)
{
    unsigned me = (unsigned)(uintptr_t)arg;
    uint64_t rng = stress_rng_seed(cfg.seed, 2 * me + 2);
    unsigned long last[MAX_THREADS] = {0};
    const unsigned long total = (unsigned long)cfg.threads * cfg.iters;
    weft_mutex_lock(&q.m);
    for (;;) {
        wait_for(&q.not_empty, has_item, "consumer", me);
        if (stopping() || q.consumed == total)
            break;
        struct item it = q.ring[q.head];
        q.head = (q.head + 1) % cfg.capacity;
        q.count--;
        q.consumed++;
        __atomic_fetch_add(&q.moved, 1, __ATOMIC_RELAXED);
        check_item(it, me, last);
        signal_cv(&q.not_full, &rng);
    }
    (void)weft_mutex_unlock(&q.m);
    /* Whoever finishes wakes the other consumers (never dropped). */
    (void)weft_cond_broadcast(&q.not_empty);
    (void)weft_cond_broadcast(&q.not_full);
    return NULL;
}

/* Fails the run if nothing moves for 4 x wait-ms; returns when `done` is set. */
static void *watchdog_main(void *arg)
{
    int *done = arg;
    unsigned long before = (unsigned long)-1;
    uint64_t since = weft_now_ns();
    while (!__atomic_load_n(done, __ATOMIC_ACQUIRE)) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
        unsigned long now = __atomic_load_n(&q.moved, __ATOMIC_RELAXED);
        if (now != before) {
            before = now;
            since = weft_now_ns();
        } else if (weft_now_ns() - since > (uint64_t)cfg.wait_ms * 4000000ULL && !stopping()) {
            fail("stall: no item moved for %u x wait-ms (%lu items moved)", 4u, now);
            (void)weft_cond_broadcast(&q.not_empty);
            (void)weft_cond_broadcast(&q.not_full);
        }
    }
    return NULL;
}

/* ---- main ------------------------------------------------------------------ */

/* Every item delivered exactly once? Reports the first one missing. */
static int check_all_seen(void)
{
    size_t n = (size_t)cfg.threads * cfg.iters;
    for (size_t i = 0; i < n; i++)
        if (q.seen[i] != 1) {
            fail("item never delivered (producer %u, seq %lu)", (unsigned)(i / cfg.iters),
                 i % cfg.iters);
            return 1;
        }
    return 0;
}

static int report(void)
{
    int f = __atomic_load_n(&q.failures, __ATOMIC_RELAXED);
    if (cfg.broken) {
        printf("stress_cond: seed=%llu: dropped signals %s (%d failures, %lu items)\n",
               (unsigned long long)cfg.seed, f ? "caught" : "NOT caught", f, q.consumed);
        return f ? 0 : 1;
    }
    printf("stress_cond: seed=%llu: %s: %lu items\n", (unsigned long long)cfg.seed,
           f ? "FAILED" : "ok", q.consumed);
    return f ? 1 : 0;
}

int main(int argc, char **argv)
{
    cfg.seed = stress_parse(&prog, argc, argv).seed;
    stress_start("stress_cond: seed=%" PRIu64 " producers=%u consumers=%u iters=%u capacity=%u "
                 "wait=%ums cond=%s",
                 cfg.seed, cfg.threads, cfg.threads, cfg.iters, cfg.capacity, cfg.wait_ms,
                 cfg.broken ? "broken (drops half the signals)" : "weft_cond_t");
    q.seen = calloc((size_t)cfg.threads * cfg.iters, 1);
    if (q.seen == NULL)
        return 2;
    pthread_t prod[MAX_THREADS], cons[MAX_THREADS], dog;
    int done = 0;
    pthread_create(&dog, NULL, watchdog_main, &done);
    for (unsigned i = 0; i < cfg.threads; i++) {
        pthread_create(&cons[i], NULL, consumer_main, (void *)(uintptr_t)i);
        pthread_create(&prod[i], NULL, producer_main, (void *)(uintptr_t)i);
    }
    for (unsigned i = 0; i < cfg.threads; i++) {
        pthread_join(prod[i], NULL);
        pthread_join(cons[i], NULL);
    }
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    pthread_join(dog, NULL);
    if (!stopping())
        (void)check_all_seen();
    int rc = report();
    free(q.seen);
    return rc;
}
