/*
 * Stress for the Treiber stack: ABA and reclamation under contention.
 *
 *   test_stress_stack [--impl stack|naive] [--threads N] [--iters N]
 *                     [--seed S] [--long]
 *
 * Every thread pushes its own tagged items (thread, sequence) in bursts and
 * pops bursts of whatever is on top, so nodes are popped, retired and
 * re-allocated all the time. At the end the stack is drained, and every
 * item must have been popped exactly once: none lost, none duplicated.
 * Weft's stack runs with the hazard pointer debug checks on, which must stay
 * silent. The seed sets each thread's burst lengths; it is printed first
 * and in every failure.
 *
 * --impl naive is a deliberately naive Treiber stack whose nodes are
 * recycled through a FIFO pool: the ABA problem corrupts it, and that run
 * passes only when the harness detects the corruption.
 *
 * --long stands for --iters 1000000 (50 times the default), and options
 * given with it override it; given alone (as `make stress` does), it runs
 * 4 threads and then 16 (oversubscribed), each in its own process. Failure
 * lines read "stress_stack: seed=S: ..." on stderr (stress.h).
 */
#include <pthread.h>
#include <sched.h>

#include "stress/stress.h"

// ctest-timeout 120
// ctest stack_4threads --impl stack --threads 4 --iters 20000
// ctest stack_oversubscribed --impl stack --threads 12 --iters 3000
// ctest stack_seeded --impl stack --threads 3 --iters 10000 --seed 4242
// ctest naive_stack_is_caught --impl naive --threads 4 --iters 50000
// ctest long_preset --long --iters 3000

#define MAX_THREADS 64

static struct {
    int naive; /* 0: weft's stack, 1: the naive one */
    unsigned threads;
    uint64_t iters;
    uint64_t seed;
} opt = {0, 4, 20000, 0};

static const struct stress_opt options[] = {
    STRESS_CHOICE("--impl", "stack|naive", opt.naive),
    STRESS_UINT("--threads", "N", opt.threads, 1, MAX_THREADS),
    STRESS_U64("--iters", "N", opt.iters, 1, (1ull << 40) - 1),
    {0},
};

/* --long: 50 times the default iterations. */
static const char *const long_preset[] = {"--iters", "1000000", NULL};

static const struct stress_prog prog = {"stress_stack", options, long_preset};

static weft_stack_t stack = WEFT_STACK_INIT;
static uint64_t **seen; /* per thread: bitmap of sequence numbers popped */
static int failures;    /* atomic */
static uint64_t popped; /* atomic */

/* Reports a failure (the first ten of them). */
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        if (__atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED) < 10)                               \
            stress_fail(prog.name, opt.seed, __VA_ARGS__);                                         \
    } while (0)

/* ---- the naive stack ----------------------------------------------------------- */

/* Fields are atomics so that ThreadSanitizer reports nothing: the breakage
 * shown is the ABA logic error, not a data race. */
struct nnode {
    struct nnode *next; /* atomic */
    uintptr_t item;     /* atomic */
    struct nnode *pool; /* protected by pool_mu */
    struct nnode *all;  /* protected by pool_mu: every node, for freeing */
};

static struct nnode *n_top; /* atomic */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct nnode *pool_head, *pool_tail, *all_nodes;

static struct nnode *n_alloc(void)
{
    pthread_mutex_lock(&pool_mu);
    struct nnode *n = pool_head;
    if (n != NULL) {
        pool_head = n->pool;
        if (pool_head == NULL)
            pool_tail = NULL;
    } else if ((n = calloc(1, sizeof *n)) != NULL) {
        n->all = all_nodes;
        all_nodes = n;
    }
    pthread_mutex_unlock(&pool_mu);
    if (n == NULL)
        abort();
    return n;
}

static void n_free(struct nnode *n)
{
    pthread_mutex_lock(&pool_mu);
    n->pool = NULL;
    if (pool_tail != NULL)
        pool_tail->pool = n;
    else
        pool_head = n;
    pool_tail = n;
    pthread_mutex_unlock(&pool_mu);
}

static void n_push(uintptr_t item)
{
    struct nnode *n = n_alloc();
    __atomic_store_n(&n->item, item, __ATOMIC_RELAXED);
    struct nnode *top = __atomic_load_n(&n_top, __ATOMIC_ACQUIRE);
    do
        __atomic_store_n(&n->next, top, __ATOMIC_RELAXED);
    while (
        !__atomic_compare_exchange_n(&n_top, &top, n, false, __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE));
}

static int n_pop(uintptr_t *item, uint64_t *rs)
{
    for (;;) {
        struct nnode *top = __atomic_load_n(&n_top, __ATOMIC_ACQUIRE);
        if (top == NULL)
            return -EAGAIN;
        struct nnode *next = __atomic_load_n(&top->next, __ATOMIC_RELAXED);
        if (stress_xorshift64(rs) % 8 == 0)
            sched_yield(); /* widen the window between the read and the CAS */
        if (__atomic_compare_exchange_n(&n_top, &top, next, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_ACQUIRE)) {
            *item = __atomic_load_n(&top->item, __ATOMIC_RELAXED);
            n_free(top);
            return 0;
        }
    }
}

static void n_destroy(void)
{
    while (all_nodes != NULL) {
        struct nnode *n = all_nodes;
        all_nodes = n->all;
        free(n);
    }
}

/* ---- the workload --------------------------------------------------------------- */

static void push(uintptr_t item)
{
    if (opt.naive)
        n_push(item);
    else if (weft_stack_push(&stack, (void *)item) != 0)
        FAIL("weft_stack_push failed");
}

static int pop(uintptr_t *item, uint64_t *rs)
{
    if (opt.naive)
        return n_pop(item, rs);
    void *p;
    int r = weft_stack_pop(&stack, &p);
    *item = (uintptr_t)p;
    return r;
}

static void record(uintptr_t item)
{
    uintptr_t t = item >> 40;
    uint64_t s = item & ((1ull << 40) - 1);
    __atomic_fetch_add(&popped, 1, __ATOMIC_RELAXED);
    if (t >= (uintptr_t)opt.threads || s == 0 || s > opt.iters) {
        FAIL("garbage item %#" PRIxPTR, item);
        return;
    }
    uint64_t bit = 1ull << (s % 64);
    if (__atomic_fetch_or(&seen[t][s / 64], bit, __ATOMIC_RELAXED) & bit)
        FAIL("thread %" PRIuPTR ": item %" PRIu64 " popped twice", t, s);
}

static void *worker(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    uint64_t rs = opt.seed * 2654435761u + id * 2 + 1;
    uint64_t next = 1;
    while (next <= opt.iters) {
        uint64_t burst = 1 + stress_xorshift64(&rs) % 8;
        for (uint64_t i = 0; i < burst && next <= opt.iters; i++)
            push((id << 40) | next++);
        for (uint64_t i = 0; i < burst; i++) {
            uintptr_t item;
            if (pop(&item, &rs) == 0)
                record(item);
        }
        if (__atomic_load_n(&failures, __ATOMIC_RELAXED) > 0)
            break; /* caught: stop early */
    }
    return NULL;
}

/* Pops what is left (bounded: a corrupted naive stack may hold a cycle). */
static void drain(void)
{
    uint64_t rs = opt.seed | 1, limit = opt.iters * (uint64_t)opt.threads * 2 + 16;
    uintptr_t item;
    while (limit-- > 0 && pop(&item, &rs) == 0)
        record(item);
    uint64_t lost = 0;
    for (unsigned t = 0; t < opt.threads; t++)
        for (uint64_t s = 1; s <= opt.iters; s++)
            if (!(seen[t][s / 64] & (1ull << (s % 64))))
                lost++;
    if (lost > 0 && failures == 0)
        FAIL("%" PRIu64 " items lost", lost);
}

/* `--long` alone: both thread counts, long, one child process each. */
static int run_long_presets(void)
{
    static const char *const threads[] = {"4", "16"};
    for (size_t i = 0; i < 2; i++) {
        const char *argv[] = {"test_stress_stack", "--long", "--threads", threads[i], NULL};
        if (stress_run_self(argv) != 0)
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct stress_args args = stress_parse(&prog, argc, argv);
    if (argc == 2 && args.long_run)
        return run_long_presets();
    opt.seed = args.seed != 0 ? args.seed : 1;
    stress_start("seed=%" PRIu64 " impl=%s threads=%u iters=%" PRIu64, opt.seed,
                 opt.naive ? "naive" : "stack", opt.threads, opt.iters);
    weft_hp_debug_set(true);
    seen = calloc((size_t)opt.threads, sizeof *seen);
    for (unsigned t = 0; seen != NULL && t < opt.threads; t++)
        if ((seen[t] = calloc(opt.iters / 64 + 1, sizeof **seen)) == NULL)
            return 2;
    pthread_t th[MAX_THREADS];
    for (uintptr_t i = 0; i < (uintptr_t)opt.threads; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)i) != 0)
            return 2;
    for (unsigned i = 0; i < opt.threads; i++)
        pthread_join(th[i], NULL);
    drain();
    if (!opt.naive) {
        if (weft_hp_drain() != 0)
            FAIL("retired nodes still protected after every thread finished");
        if (weft_hp_debug_reports() != 0)
            FAIL("%" PRIu64 " hazard pointer debug reports", weft_hp_debug_reports());
    }
    weft_stack_destroy(&stack);
    n_destroy();
    for (unsigned t = 0; t < opt.threads; t++)
        free(seen[t]);
    free(seen);
    const char *name = opt.naive ? "naive" : "stack";
    if (opt.naive) {
        printf("%s (seed=%" PRIu64 "): %s\n", name, opt.seed,
               failures > 0 ? "ABA corruption detected, as it must be"
                            : "ABA corruption NOT detected");
        return failures > 0 ? 0 : 1;
    }
    printf("%s (seed=%" PRIu64 "): %s\n", name, opt.seed, failures > 0 ? "FAILED" : "ok");
    return failures > 0 ? 1 : 0;
}
