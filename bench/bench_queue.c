/*
 * bench_queue - weft's queues against their anchors, side by side in one run.
 *
 *   bench_queue [--items N] [--reps N] [--capacity N] [--quick]
 *               [--sides LIST] [--only NAME]
 *
 * MPMC: weft_queue_t (try calls with the common wait policy, and its own
 * blocking calls) against Concurrency Kit's ck_ring MPMC and a bounded
 * queue under one pthread mutex with two condition variables, for 1p1c,
 * 2p2c and the oversubscribed 4p4c and 8p8c (8 and 16 threads).
 * SPSC: weft_ring_t against ck_ring's SPSC functions, 1p1c.
 *
 * --sides 1,2 runs only those producer (= consumer) counts; --only NAME
 * only the implementations whose name contains NAME (e.g. "mpmc", "weft").
 *
 * Fairness: every implementation is called through the same function
 * pointer from the same loops, moves the same pointer-sized items, and has
 * the same number of slots (ck_ring keeps one empty, so it holds one item
 * less). The single-thread rows show the cost of the operations alone:
 * push+pop in turn (one slot, always cached), and fill+drain, which walks
 * the whole buffer as each thread does in its turn when two share a CPU.
 *
 * Each cell of the table is the median of --reps runs (5 by default, each
 * implementation's runs interleaved with the others') moving --items items
 * through a queue of --capacity slots; ns/item is wall time divided by
 * items (so with two threads working at once it is not the latency of one
 * operation). Non-blocking implementations wait in the same way: retry
 * with a CPU pause, and yield the CPU after 64 failed tries, which is what
 * makes them usable with more threads than cores. Every run checks the sum
 * of the items consumed, so no number comes from a broken run.
 *
 * A non-blocking run still going after the time limit (5 s) is stopped and
 * its rate computed from the items that got through, marked as such:
 * ck_ring's MPMC enqueue spins until earlier producers have published, so
 * with more threads than CPUs a preempted producer stalls all the others.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/base.h"
#include "weft.h"

#ifdef WEFT_HAVE_CK
#include <ck_ring.h>
#endif

#define MAX_SIDE 8

struct impl {
    const char *name;
    int (*init)(size_t cap);
    void (*fini)(void);
    int (*push)(void *item); /* 0, or nonzero when full */
    int (*pop)(void **item); /* 0, or nonzero when empty */
    bool blocking;           /* push/pop wait by themselves */
};

static size_t g_cap = 1024;

/* ---- weft ------------------------------------------------------------------- */

static weft_queue_t wq;
static weft_ring_t wr;

static int wq_init(size_t cap)
{
    return weft_queue_init(&wq, cap);
}
static void wq_fini(void)
{
    weft_queue_destroy(&wq);
}
static int wq_push(void *item)
{
    return weft_queue_trypush(&wq, item);
}
static int wq_pop(void **item)
{
    return weft_queue_trypop(&wq, item);
}
static int wq_bpush(void *item)
{
    return weft_queue_push(&wq, item, WEFT_FOREVER);
}
static int wq_bpop(void **item)
{
    return weft_queue_pop(&wq, item, WEFT_FOREVER);
}
static int wr_init(size_t cap)
{
    return weft_ring_init(&wr, cap);
}
static void wr_fini(void)
{
    weft_ring_destroy(&wr);
}
static int wr_push(void *item)
{
    return weft_ring_push_spsc(&wr, item);
}
static int wr_pop(void **item)
{
    return weft_ring_pop_spsc(&wr, item);
}

/* ---- pthread mutex + condition variables ---------------------------------------- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t not_full, not_empty;
    void **slot;
    size_t cap, head, len;
} mq = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER};

static int mq_init(size_t cap)
{
    mq.slot = calloc(cap, sizeof *mq.slot);
    mq.cap = cap;
    mq.head = mq.len = 0;
    return mq.slot != NULL ? 0 : -ENOMEM;
}
static void mq_fini(void)
{
    free(mq.slot);
}
static int mq_push(void *item)
{
    pthread_mutex_lock(&mq.mu);
    while (mq.len == mq.cap)
        pthread_cond_wait(&mq.not_full, &mq.mu);
    mq.slot[(mq.head + mq.len++) % mq.cap] = item;
    pthread_cond_signal(&mq.not_empty);
    pthread_mutex_unlock(&mq.mu);
    return 0;
}
static int mq_pop(void **item)
{
    pthread_mutex_lock(&mq.mu);
    while (mq.len == 0)
        pthread_cond_wait(&mq.not_empty, &mq.mu);
    *item = mq.slot[mq.head];
    mq.head = (mq.head + 1) % mq.cap;
    mq.len--;
    pthread_cond_signal(&mq.not_full);
    pthread_mutex_unlock(&mq.mu);
    return 0;
}

/* ---- Concurrency Kit ------------------------------------------------------------ */

#ifdef WEFT_HAVE_CK
static ck_ring_t ckr;
static ck_ring_buffer_t *ckb;

/*
 * The same number of slots as weft's queue: the capacity rounded up to a
 * power of two. ck_ring keeps one slot empty, so it holds one item less.
 * (Asking it for cap + 1 slots would round a power-of-two capacity up to
 * twice as many: with the two threads taking turns on a busy machine, each
 * turn then moves twice as many items, which measures the capacity, not
 * the queue.)
 */
static int ck_init(size_t cap)
{
    unsigned size = 2;
    while (size < cap)
        size <<= 1;
    ckb = calloc(size, sizeof *ckb);
    if (ckb == NULL)
        return -ENOMEM;
    ck_ring_init(&ckr, size);
    return 0;
}
static void ck_fini(void)
{
    free(ckb);
}
static int ck_push_mpmc(void *item)
{
    return ck_ring_enqueue_mpmc(&ckr, ckb, item) ? 0 : -EAGAIN;
}
static int ck_pop_mpmc(void **item)
{
    return ck_ring_dequeue_mpmc(&ckr, ckb, item) ? 0 : -EAGAIN;
}
static int ck_push_spsc(void *item)
{
    return ck_ring_enqueue_spsc(&ckr, ckb, item) ? 0 : -EAGAIN;
}
static int ck_pop_spsc(void **item)
{
    return ck_ring_dequeue_spsc(&ckr, ckb, item) ? 0 : -EAGAIN;
}
#endif

static const struct impl mpmc_impls[] = {
    {"weft_queue (try+yield)", wq_init, wq_fini, wq_push, wq_pop, false},
    {"weft_queue (blocking)", wq_init, wq_fini, wq_bpush, wq_bpop, true},
#ifdef WEFT_HAVE_CK
    {"ck_ring mpmc", ck_init, ck_fini, ck_push_mpmc, ck_pop_mpmc, false},
#endif
    {"pthread mutex+cond", mq_init, mq_fini, mq_push, mq_pop, true},
};

static const struct impl spsc_impls[] = {
    {"weft_ring spsc", wr_init, wr_fini, wr_push, wr_pop, false},
#ifdef WEFT_HAVE_CK
    {"ck_ring spsc", ck_init, ck_fini, ck_push_spsc, ck_pop_spsc, false},
#endif
};

/* ---- the run ---------------------------------------------------------------------- */

static const struct impl *cur;
static pthread_barrier_t start;
static uint64_t per_producer, per_consumer;
static uint64_t sum, consumed; /* atomic */
static int stop;               /* atomic: the run hit its time limit */
static double time_limit_s = 5.0;

static bool stopped(void)
{
    return __atomic_load_n(&stop, __ATOMIC_RELAXED) != 0;
}

/* Retry policy shared by the non-blocking implementations. Returns false
 * when the run was stopped at its time limit. */
static bool wait_policy(unsigned *fails)
{
    if (++*fails % 64 != 0) {
        weft__cpu_relax();
        return true;
    }
    sched_yield();
    return !stopped();
}

static void *producer(void *arg)
{
    uintptr_t base = (uintptr_t)arg * per_producer;
    pthread_barrier_wait(&start);
    for (uintptr_t i = 1; i <= per_producer; i++) {
        unsigned fails = 0;
        while (cur->push((void *)(base + i)) != 0)
            if (!wait_policy(&fails))
                return NULL;
    }
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    uint64_t local = 0, n = 0;
    void *item;
    pthread_barrier_wait(&start);
    for (; n < per_consumer; n++) {
        unsigned fails = 0;
        while (cur->pop(&item) != 0)
            if (!wait_policy(&fails))
                goto out;
        local += (uintptr_t)item;
    }
out:
    __atomic_fetch_add(&sum, local, __ATOMIC_RELAXED);
    __atomic_fetch_add(&consumed, n, __ATOMIC_RELAXED);
    return NULL;
}

/* Joins t, or gives up at the deadline (absolute CLOCK_REALTIME). */
static bool join_by(pthread_t t, const struct timespec *deadline)
{
    return pthread_timedjoin_np(t, NULL, deadline) == 0;
}

/*
 * One timed run; returns nanoseconds per item, or 0 when the checksum is
 * wrong. Non-blocking implementations are stopped at the time limit (then
 * *partial is set and the rate counts the items that got through); the
 * blocking ones always run to the end.
 */
static double run_once(const struct impl *im, int np, int nc, uint64_t items, bool *partial)
{
    pthread_t p[MAX_SIDE], c[MAX_SIDE];
    cur = im;
    per_producer = items / (uint64_t)np;
    per_consumer = items / (uint64_t)nc;
    sum = consumed = 0;
    stop = 0;
    if (im->init(g_cap) != 0 || pthread_barrier_init(&start, NULL, (unsigned)(np + nc + 1)))
        return 0;
    for (intptr_t i = 0; i < np; i++)
        pthread_create(&p[i], NULL, producer, (void *)i);
    for (int i = 0; i < nc; i++)
        pthread_create(&c[i], NULL, consumer, NULL);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)time_limit_s;
    pthread_barrier_wait(&start);
    uint64_t t0 = weft__now_ns();
    bool late = false;
    for (int i = 0; i < np; i++)
        if (!join_by(p[i], &deadline) && !im->blocking) {
            __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
            late = true;
            pthread_join(p[i], NULL);
        }
    for (int i = 0; i < nc; i++)
        pthread_join(c[i], NULL);
    uint64_t dt = weft__now_ns() - t0;
    pthread_barrier_destroy(&start);
    im->fini();
    *partial = late;
    if (late)
        return consumed > 0 ? (double)dt / (double)consumed : (double)dt;
    return sum == items * (items + 1) / 2 ? (double)dt / (double)items : 0;
}

static const char *g_only; /* run only implementations whose name has this */

static bool selected(const struct impl *im)
{
    return g_only == NULL || strstr(im->name, g_only) != NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct cell {
    double t[16]; /* ns/item of each run */
    int npartial; /* runs stopped at the time limit */
};

static void print_cell(const struct impl *im, int side, struct cell *c, int reps)
{
    qsort(c->t, (size_t)reps, sizeof c->t[0], cmp_double);
    double ns = c->t[reps / 2];
    printf("  %-24s %dp%dc  %3d threads  %9.1f ns/item  %12.0f items/s", im->name, side, side,
           2 * side, ns, 1e9 / ns);
    if (c->npartial > 0)
        printf("  (%d of %d runs stopped at the %.0f s limit)", c->npartial, reps, time_limit_s);
    printf("\n");
    fflush(stdout);
}

/*
 * Runs each selected implementation of ims[0..n) `reps` times with `side`
 * producers and `side` consumers, interleaved (one run of each in turn),
 * so that a change of load on a shared machine falls on all of them
 * alike; then prints the medians.
 */
static int measure(const struct impl *ims, size_t n, int side, uint64_t items, int reps)
{
    struct cell cells[8];
    if (n > 8)
        return 1;
    memset(cells, 0, sizeof cells);
    for (int r = 0; r < reps; r++)
        for (size_t i = 0; i < n; i++) {
            bool partial = false;
            if (!selected(&ims[i]))
                continue;
            if ((cells[i].t[r] = run_once(&ims[i], side, side, items, &partial)) == 0) {
                fprintf(stderr, "%s %dp%dc: wrong checksum or setup failure\n", ims[i].name, side,
                        side);
                return 1;
            }
            cells[i].npartial += partial;
        }
    for (size_t i = 0; i < n; i++)
        if (selected(&ims[i]))
            print_cell(&ims[i], side, &cells[i], reps);
    return 0;
}

/*
 * One thread moving n items, never waiting: the cost of the operations
 * themselves, without any cache line moving between CPUs. `batch` 1 pushes
 * and pops in turn (one cell, always in the L1 cache); `batch` capacity - 1
 * fills the queue and drains it again, walking the whole buffer, which is
 * what each thread does in its turn when the two share one CPU. Returns
 * ns per item, or 0 on failure.
 */
static double run_uncontended(const struct impl *im, uint64_t n, uint64_t batch)
{
    void *item;
    if (im->init(g_cap) != 0)
        return 0;
    uint64_t t0 = weft__now_ns(), check = 0;
    for (uintptr_t i = 1; i <= n; i += batch) {
        uintptr_t end = i + batch <= n + 1 ? i + batch : n + 1;
        for (uintptr_t j = i; j < end; j++)
            if (im->push((void *)j) != 0)
                return 0;
        for (uintptr_t j = i; j < end; j++) {
            if (im->pop(&item) != 0)
                return 0;
            check += (uintptr_t)item;
        }
    }
    double ns = (double)(weft__now_ns() - t0) / (double)n;
    im->fini();
    return check == n * (n + 1) / 2 ? ns : 0;
}

/* Best of `reps` (the first run also warms the CPU clock up). */
static int measure_uncontended(const struct impl *im, uint64_t n, int reps)
{
    double best[2] = {0, 0};
    const uint64_t batch[2] = {1, g_cap - 1};
    for (int r = 0; r < reps; r++)
        for (int b = 0; b < 2; b++) {
            double ns = run_uncontended(im, n, batch[b]);
            if (ns == 0)
                return 1;
            if (r == 0 || ns < best[b])
                best[b] = ns;
        }
    printf("  %-24s 1 thread   push+pop  %9.1f ns/pair   fill+drain  %5.1f ns/item\n", im->name,
           best[0], best[1]);
    return 0;
}

static void print_load(const char *when)
{
    char buf[128] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL) {
        if (fgets(buf, sizeof buf, f) == NULL)
            buf[0] = '\0';
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = '\0';
    printf("load average %s: %s\n", when, buf);
}

/* "1,2,4,8": the producer (= consumer) counts to run, each 1 to MAX_SIDE,
 * in increasing order, at most four. Returns how many; 0 when malformed. */
static int parse_sides(const char *arg, int sides[4])
{
    int n = 0;
    for (const char *p = arg; *p != '\0' && n < 4; n++) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > MAX_SIDE || (n > 0 && v <= sides[n - 1]))
            return 0;
        sides[n] = (int)v;
        if (*end == '\0')
            return n + 1;
        if (*end != ',')
            return 0;
        p = end + 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t items = 2000000;
    int reps = 5;
    const char *sides_arg = "1,2,4,8";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            items = 200000, reps = 1, time_limit_s = 2;
        else if (i + 1 < argc && strcmp(argv[i], "--items") == 0)
            items = strtoull(argv[++i], NULL, 0);
        else if (i + 1 < argc && strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--capacity") == 0)
            g_cap = strtoull(argv[++i], NULL, 0);
        else if (i + 1 < argc && strcmp(argv[i], "--sides") == 0)
            sides_arg = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--only") == 0)
            g_only = argv[++i];
        else {
            fprintf(stderr,
                    "usage: %s [--items N] [--reps N] [--capacity N] [--quick]\n"
                    "       [--sides LIST (default 1,2,4,8)] [--only NAME-SUBSTRING]\n",
                    argv[0]);
            return 2;
        }
    }
    if (reps < 1 || reps > 15 || g_cap < 2 || items < 64)
        return 2;
    items -= items % 64; /* divisible by every side count */
    printf("bench_queue: %" PRIu64 " items, capacity %zu, median of %d, %u CPUs\n", items, g_cap,
           reps, weft_cpu_count());
    int sides[4], nsides = parse_sides(sides_arg, sides);
    if (nsides == 0)
        return 2;
    int bad = 0;
    print_load("before");
    printf("Uncontended\n");
    for (size_t i = 0; i < sizeof mpmc_impls / sizeof mpmc_impls[0]; i++)
        if (selected(&mpmc_impls[i]))
            bad |= measure_uncontended(&mpmc_impls[i], items, reps + 1);
    for (size_t i = 0; i < sizeof spsc_impls / sizeof spsc_impls[0]; i++)
        if (selected(&spsc_impls[i]))
            bad |= measure_uncontended(&spsc_impls[i], items, reps + 1);
    printf("MPMC\n");
    for (int s = 0; s < nsides; s++)
        bad |= measure(mpmc_impls, sizeof mpmc_impls / sizeof mpmc_impls[0], sides[s], items, reps);
    printf("SPSC\n");
    if (sides[0] == 1)
        bad |= measure(spsc_impls, sizeof spsc_impls / sizeof spsc_impls[0], 1, items * 4, reps);
    print_load("after");
    return bad;
}
