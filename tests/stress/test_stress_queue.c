/*
 * Linearisability-style stress for the MPMC queue and the SPSC ring.
 *
 *   test_stress_queue [--impl queue|ring|broken-queue|broken-ring]
 *                     [--threads N] [--iters N] [--capacity N] [--blocking]
 *                     [--seed S] [--long]
 *
 * N producers and N consumers (one of each for the rings). Every item is
 * tagged with its producer and a per-producer sequence number. The harness
 * checks that no item is lost or duplicated (a bitmap per producer) and
 * that each consumer sees every producer's items in increasing order (a
 * FIFO queue may interleave producers but never reorder one producer's
 * items). A watchdog stops the run when nothing moves for a while: a stall
 * is a failure too. The seed picks, per operation, blocking or try calls
 * and short pauses; it is printed first and in every failure.
 *
 * --blocking (queue only) makes every call a blocking one with a long
 * timeout and gives each consumer a quota equal to one producer's items, so
 * every call must eventually succeed: a missed wake-up shows as a stall.
 *
 * The broken-* implementations are deliberately wrong (a queue whose
 * positions are claimed with a load and a store instead of a CAS; a ring
 * that publishes a slot before writing it). Their runs pass only when the
 * harness detects the breakage, proving that it can.
 *
 * --long stands for --iters 1000000 (50 times the default), and options
 * given with it override it; given alone (as `make stress` does), it runs
 * every configuration in run_long_presets() in turn, each in its own
 * process. Failure lines read "stress_queue: seed=S: ..." on stderr
 * (stress.h).
 */
#include <pthread.h>
#include <sched.h>

#include "stress/stress.h"

// ctest-timeout 120
// ctest queue_2p2c --impl queue --threads 2 --iters 30000
// ctest queue_oversubscribed --impl queue --threads 6 --iters 5000 --capacity 8
// ctest queue_tiny_blocking --impl queue --threads 3 --iters 5000 --capacity 2
// ctest queue_blocking_only --impl queue --threads 3 --iters 20000 --capacity 2 --blocking
// ctest queue_seeded --impl queue --threads 2 --iters 10000 --seed 12345
// ctest ring_spsc --impl ring --iters 300000 --capacity 16
// ctest broken_queue_is_caught --impl broken-queue --threads 2 --iters 50000
// ctest broken_ring_is_caught --impl broken-ring --iters 300000
// ctest long_preset --long --threads 3 --iters 3000

#define MAX_THREADS 64
#define SEC 1000000000LL

enum impl { IMPL_QUEUE, IMPL_RING, IMPL_BROKEN_QUEUE, IMPL_BROKEN_RING };

static const char *const impl_names[] = {"queue", "ring", "broken-queue", "broken-ring"};

static struct {
    int impl; /* enum impl */
    unsigned threads;
    uint64_t iters;
    uint64_t capacity;
    uint64_t seed;
    int stall_ms;
    bool blocking;
} opt = {IMPL_QUEUE, 2, 20000, 64, 0, 10000, false};

static const struct stress_opt options[] = {
    STRESS_CHOICE("--impl", "queue|ring|broken-queue|broken-ring", opt.impl),
    STRESS_UINT("--threads", "N", opt.threads, 1, MAX_THREADS),
    STRESS_U64("--iters", "N", opt.iters, 1, (1ull << 40) - 1),
    STRESS_U64("--capacity", "N", opt.capacity, 1, 1u << 30),
    STRESS_FLAG("--blocking", opt.blocking),
    {0},
};

/* --long: 50 times the default iterations. */
static const char *const long_preset[] = {"--iters", "1000000", NULL};

static const struct stress_prog prog = {"stress_queue", options, long_preset};

#define BLOCK_NS (15 * SEC) /* --blocking: longer than the stall limit */

static weft_queue_t queue;
static weft_ring_t ring;

/* The broken queue: positions claimed with a separate load and store. */
static struct {
    uintptr_t *slot; /* atomic */
    size_t mask;
    size_t head, tail; /* atomic */
} bq;

static uint64_t **seen;    /* per producer: bitmap of sequence numbers */
static uint64_t consumed;  /* atomic: items popped, duplicates included */
static uint64_t produced;  /* atomic: items pushed */
static int producers_left; /* atomic */
static int threads_left;   /* atomic: producers and consumers running */
static int stop;           /* atomic: set by the watchdog or a failure */
static int failures;       /* atomic */

/* Reports a failure (the first ten of them). */
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        if (__atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED) < 10)                               \
            stress_fail(prog.name, opt.seed, __VA_ARGS__);                                         \
    } while (0)

static bool stopped(void)
{
    return __atomic_load_n(&stop, __ATOMIC_RELAXED) != 0;
}

/* ---- the deliberately broken implementations -------------------------------- */

static int bq_push(uintptr_t item, uint64_t *rs)
{
    size_t t = __atomic_load_n(&bq.tail, __ATOMIC_ACQUIRE);
    if (t - __atomic_load_n(&bq.head, __ATOMIC_ACQUIRE) > bq.mask)
        return -EAGAIN;
    __atomic_store_n(&bq.slot[t & bq.mask], item, __ATOMIC_RELAXED);
    if (stress_xorshift64(rs) % 16 == 0)
        sched_yield(); /* widen the window the missing CAS leaves open */
    __atomic_store_n(&bq.tail, t + 1, __ATOMIC_RELEASE);
    return 0;
}

static int bq_pop(uintptr_t *item, uint64_t *rs)
{
    size_t h = __atomic_load_n(&bq.head, __ATOMIC_ACQUIRE);
    if (h == __atomic_load_n(&bq.tail, __ATOMIC_ACQUIRE))
        return -EAGAIN;
    *item = __atomic_load_n(&bq.slot[h & bq.mask], __ATOMIC_RELAXED);
    if (stress_xorshift64(rs) % 16 == 0)
        sched_yield();
    __atomic_store_n(&bq.head, h + 1, __ATOMIC_RELEASE);
    return 0;
}

/* The broken ring: the head moves before the slot is written. */
static int br_push(uintptr_t item, uint64_t *rs)
{
    size_t h = __atomic_load_n(&bq.tail, __ATOMIC_RELAXED);
    if (h - __atomic_load_n(&bq.head, __ATOMIC_ACQUIRE) > bq.mask)
        return -EAGAIN;
    __atomic_store_n(&bq.tail, h + 1, __ATOMIC_RELEASE);
    if (stress_xorshift64(rs) % 64 == 0)
        sched_yield();
    __atomic_store_n(&bq.slot[h & bq.mask], item, __ATOMIC_RELAXED);
    return 0;
}

/* ---- one push and one pop, per implementation --------------------------------- */

static int do_push(uintptr_t item, uint64_t *rs)
{
    switch (opt.impl) {
    case IMPL_QUEUE:
        if (opt.blocking)
            return weft_queue_push(&queue, (void *)item, BLOCK_NS);
        if (stress_xorshift64(rs) % 2)
            return weft_queue_trypush(&queue, (void *)item);
        return weft_queue_push(&queue, (void *)item,
                               (int64_t)(stress_xorshift64(rs) % 3) * 1000000);
    case IMPL_RING:
        return weft_ring_push_spsc(&ring, (void *)item);
    case IMPL_BROKEN_QUEUE:
        return bq_push(item, rs);
    case IMPL_BROKEN_RING:
        return br_push(item, rs);
    }
    return -EINVAL;
}

static int do_pop(uintptr_t *item, uint64_t *rs)
{
    void *p = NULL;
    int r;
    switch (opt.impl) {
    case IMPL_QUEUE:
        if (opt.blocking)
            r = weft_queue_pop(&queue, &p, BLOCK_NS);
        else
            r = stress_xorshift64(rs) % 2
                    ? weft_queue_trypop(&queue, &p)
                    : weft_queue_pop(&queue, &p, (int64_t)(stress_xorshift64(rs) % 3) * 1000000);
        *item = (uintptr_t)p;
        return r;
    case IMPL_RING:
        r = weft_ring_pop_spsc(&ring, &p);
        *item = (uintptr_t)p;
        return r;
    default: /* the broken ring's consumer is the broken queue's */
        return bq_pop(item, rs);
    }
}

/* ---- producers and consumers ------------------------------------------------- */

static void *producer(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    uint64_t rs = opt.seed * 2654435761u + id * 2 + 1;
    for (uint64_t i = 1; i <= opt.iters && !stopped(); i++) {
        uintptr_t item = (id << 40) | i;
        while (do_push(item, &rs) != 0 && !stopped())
            if (stress_xorshift64(&rs) % 4 == 0)
                sched_yield();
        __atomic_fetch_add(&produced, 1, __ATOMIC_RELAXED);
    }
    __atomic_fetch_sub(&producers_left, 1, __ATOMIC_RELEASE);
    __atomic_fetch_sub(&threads_left, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void check_item(uintptr_t item, uint64_t *last)
{
    uintptr_t p = item >> 40;
    uint64_t s = item & ((1ull << 40) - 1);
    if (p >= (uintptr_t)opt.threads || s == 0 || s > opt.iters) {
        FAIL("garbage item %#" PRIxPTR " (producer %" PRIuPTR ", seq %" PRIu64 ")", item, p, s);
        return;
    }
    if (s <= last[p])
        FAIL("producer %" PRIuPTR ": seq %" PRIu64 " after %" PRIu64 " (reordered)", p, s, last[p]);
    last[p] = s;
    uint64_t bit = 1ull << (s % 64);
    if (__atomic_fetch_or(&seen[p][s / 64], bit, __ATOMIC_RELAXED) & bit)
        FAIL("producer %" PRIuPTR ": seq %" PRIu64 " popped twice", p, s);
}

static void *consumer(void *arg)
{
    uint64_t last[MAX_THREADS] = {0};
    uint64_t rs = opt.seed * 40503u + (uintptr_t)arg * 2 + 7;
    uint64_t total = opt.iters * (uint64_t)opt.threads;
    uint64_t mine = 0;
    int idle = 0;
    while (!stopped() && (opt.blocking ? mine < opt.iters
                                       : __atomic_load_n(&consumed, __ATOMIC_RELAXED) < total)) {
        uintptr_t item;
        if (do_pop(&item, &rs) == 0) {
            mine++;
            __atomic_fetch_add(&consumed, 1, __ATOMIC_RELAXED);
            check_item(item, last);
            idle = 0;
        } else if (__atomic_load_n(&producers_left, __ATOMIC_ACQUIRE) == 0 && ++idle > 1000) {
            break; /* everything pushed and nothing left: the rest was lost */
        } else {
            sched_yield();
        }
    }
    __atomic_fetch_sub(&threads_left, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Waits for every thread to finish; stops the run (and fails it) when
 * neither pushes nor pops make progress for opt.stall_ms. */
static void watch(void)
{
    uint64_t before = UINT64_MAX;
    int still_ms = 0;
    while (__atomic_load_n(&threads_left, __ATOMIC_ACQUIRE) > 0) {
        usleep(10000);
        uint64_t now = __atomic_load_n(&consumed, __ATOMIC_RELAXED) +
                       __atomic_load_n(&produced, __ATOMIC_RELAXED);
        still_ms = now == before ? still_ms + 10 : 0;
        before = now;
        if (still_ms == opt.stall_ms) {
            FAIL("stalled: %" PRIu64 " pushed, %" PRIu64 " popped, of %" PRIu64,
                 __atomic_load_n(&produced, __ATOMIC_RELAXED),
                 __atomic_load_n(&consumed, __ATOMIC_RELAXED), opt.iters * (uint64_t)opt.threads);
            __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
        }
    }
}

static void count_lost(void)
{
    uint64_t lost = 0;
    for (unsigned p = 0; p < opt.threads; p++)
        for (uint64_t s = 1; s <= opt.iters; s++)
            if (!(seen[p][s / 64] & (1ull << (s % 64))))
                lost++;
    if (lost > 0)
        FAIL("%" PRIu64 " items lost", lost);
}

/* ---- setup ------------------------------------------------------------------------ */

/* `--long` alone: every configuration, long, one child process each. */
static int run_long_presets(void)
{
    static const char *const presets[][8] = {
        {"--impl", "queue", "--threads", "2", NULL},
        {"--impl", "queue", "--threads", "8", "--capacity", "8", NULL},
        {"--impl", "queue", "--threads", "3", "--capacity", "2", NULL},
        {"--impl", "queue", "--threads", "4", "--capacity", "2", "--blocking", NULL},
        {"--impl", "ring", "--capacity", "16", NULL},
    };
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        const char *argv[10] = {"test_stress_queue", "--long"};
        for (int j = 0; presets[i][j] != NULL; j++)
            argv[j + 2] = presets[i][j];
        if (stress_run_self(argv) != 0)
            return 1;
    }
    return 0;
}

/* The settings that follow from the implementation. */
static void adjust(void)
{
    if (opt.seed == 0)
        opt.seed = 1;
    if (opt.impl == IMPL_RING || opt.impl == IMPL_BROKEN_RING)
        opt.threads = 1;
    if (opt.impl != IMPL_QUEUE)
        opt.blocking = false;
    if (opt.impl == IMPL_BROKEN_QUEUE || opt.impl == IMPL_BROKEN_RING)
        opt.stall_ms = 2000; /* a broken run may wedge; that counts as caught */
}

static void setup(void)
{
    int r = 0;
    if (opt.impl == IMPL_QUEUE)
        r = weft_queue_init(&queue, opt.capacity);
    else if (opt.impl == IMPL_RING)
        r = weft_ring_init(&ring, opt.capacity);
    size_t cap = 1;
    while (cap < opt.capacity)
        cap <<= 1;
    bq.slot = calloc(cap, sizeof *bq.slot);
    bq.mask = cap - 1;
    seen = calloc((size_t)opt.threads, sizeof *seen);
    if (r != 0 || bq.slot == NULL || seen == NULL)
        exit(2);
    for (unsigned p = 0; p < opt.threads; p++)
        if ((seen[p] = calloc(opt.iters / 64 + 1, sizeof **seen)) == NULL)
            exit(2);
    producers_left = opt.threads;
    threads_left = 2 * opt.threads;
}

static void teardown(void)
{
    weft_queue_destroy(opt.impl == IMPL_QUEUE ? &queue : NULL);
    weft_ring_destroy(opt.impl == IMPL_RING ? &ring : NULL);
    for (unsigned p = 0; p < opt.threads; p++)
        free(seen[p]);
    free(seen);
    free(bq.slot);
}

int main(int argc, char **argv)
{
    struct stress_args args = stress_parse(&prog, argc, argv);
    if (argc == 2 && args.long_run)
        return run_long_presets();
    opt.seed = args.seed;
    adjust();
    stress_start("seed=%" PRIu64 " impl=%s threads=%u iters=%" PRIu64 " capacity=%" PRIu64 "%s",
                 opt.seed, impl_names[opt.impl], opt.threads, opt.iters, opt.capacity,
                 opt.blocking ? " blocking" : "");
    setup();
    pthread_t p[MAX_THREADS], c[MAX_THREADS];
    for (uintptr_t i = 0; i < (uintptr_t)opt.threads; i++)
        if (pthread_create(&p[i], NULL, producer, (void *)i) != 0 ||
            pthread_create(&c[i], NULL, consumer, (void *)i) != 0)
            return 2;
    watch();
    for (unsigned i = 0; i < opt.threads; i++) {
        pthread_join(p[i], NULL);
        pthread_join(c[i], NULL);
    }
    count_lost();
    teardown();
    bool broken = opt.impl == IMPL_BROKEN_QUEUE || opt.impl == IMPL_BROKEN_RING;
    if (broken) {
        printf("%s (seed=%" PRIu64 "): %s\n", impl_names[opt.impl], opt.seed,
               failures > 0 ? "breakage detected, as it must be" : "breakage NOT detected");
        return failures > 0 ? 0 : 1;
    }
    printf("%s (seed=%" PRIu64 "): %s\n", impl_names[opt.impl], opt.seed,
           failures > 0 ? "FAILED" : "ok");
    return failures > 0 ? 1 : 0;
}
