/*
 * Stress test for weft_once under a thundering herd.
 *
 * Every round, all threads meet at a barrier and are released together onto
 * a fresh once object. fn counts its runs, writes a payload with plain
 * stores (so ThreadSanitizer checks the happens-before edge) and, in rounds
 * the seed picks, fails its first one or two runs. Checked: fn succeeds
 * exactly once per object, every caller sees the whole payload after its
 * weft_once returns 0, and failed runs are retried by someone.
 *
 *   test_stress_once [--threads N] [--iters ROUNDS] [--broken] [--seed S] [--long]
 *
 * --broken swaps in a naive "if (!done) { fn(); done = 1; }" once; the run
 * passes only if the harness catches fn running more than once.
 *
 * --long stands for --threads 16 --iters 20000 (about 130 times the default
 * calls); options given with it override it. The seed is printed first;
 * failure lines read "stress_once: seed=S: ..." on stderr (stress.h).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "stress/stress.h"

// ctest-timeout 120
// ctest stress_default --threads 8 --iters 2000
// ctest stress_small --threads 3 --iters 500 --seed 7
// ctest broken_once_caught --threads 8 --iters 200 --broken
// ctest long_preset --long --iters 100

#define PAYLOAD 16

struct object {
    weft_once_t once;
    atomic_int bdone;      /* the broken variant's flag */
    atomic_int runs;       /* every call of fn */
    atomic_int successes;  /* calls of fn that returned 0 */
    atomic_int fails_left; /* failures fn still has to report */
    int payload[PAYLOAD];  /* plain (correct run) or relaxed atomic (broken) */
};

struct config {
    unsigned threads;
    unsigned rounds;
    uint64_t seed;
    bool broken;
};

static struct config cfg = {8, 300, 0, false};

static const struct stress_opt options[] = {
    STRESS_UINT("--threads", "N", cfg.threads, 2, 256),
    STRESS_UINT("--iters", "ROUNDS", cfg.rounds, 1, UINT32_MAX),
    STRESS_FLAG("--broken", cfg.broken),
    {0},
};

/* --long: twice the herd, about 65 times the rounds. */
static const char *const long_preset[] = {"--threads", "16", "--iters", "20000", NULL};

static const struct stress_prog prog = {"stress_once", options, long_preset};
static struct object *objects;
static weft_barrier_t start;
static atomic_long bad_payload;
static atomic_long caller_errors;

static void store_payload(struct object *o, int i, int v)
{
    if (cfg.broken)
        __atomic_store_n(&o->payload[i], v, __ATOMIC_RELAXED);
    else
        o->payload[i] = v;
}

static int load_payload(struct object *o, int i)
{
    if (cfg.broken)
        return __atomic_load_n(&o->payload[i], __ATOMIC_RELAXED);
    return o->payload[i];
}

static int expected(size_t round, int i)
{
    return (int)(round * 31 + (size_t)i * 7 + 1);
}

/* The initialiser. Yields half-way so that a broken once lets others in. */
static int init_object(void *arg)
{
    struct object *o = arg;
    size_t round = (size_t)(o - objects);
    atomic_fetch_add(&o->runs, 1);
    for (int i = 0; i < PAYLOAD; i++) {
        store_payload(o, i, expected(round, i));
        if (i == PAYLOAD / 2)
            sched_yield();
    }
    if (atomic_load(&o->fails_left) > 0) {
        atomic_fetch_sub(&o->fails_left, 1);
        return -EAGAIN;
    }
    atomic_fetch_add(&o->successes, 1);
    return 0;
}

/* What a careless programmer writes: check, then run, then mark. */
static int broken_once(struct object *o)
{
    if (atomic_load_explicit(&o->bdone, memory_order_acquire))
        return 0;
    int r = init_object(o);
    if (r == 0)
        atomic_store_explicit(&o->bdone, 1, memory_order_release);
    return r;
}

static int call_once(struct object *o)
{
    if (cfg.broken)
        return broken_once(o);
    return weft_once(&o->once, init_object, o);
}

static void check_payload(struct object *o, size_t round)
{
    for (int i = 0; i < PAYLOAD; i++)
        if (load_payload(o, i) != expected(round, i))
            atomic_fetch_add(&bad_payload, 1);
}

static void *herd_member(void *arg)
{
    uint64_t rng = cfg.seed ^ (uint64_t)(uintptr_t)arg;
    weft_backoff_t jitter;
    weft_backoff_init(&jitter, stress_splitmix64(&rng) | 1);
    (void)weft_backoff_set_limits(&jitter, 1, 64);
    for (size_t r = 0; r < cfg.rounds; r++) {
        struct object *o = &objects[r];
        (void)weft_barrier_wait(&start);
        if (stress_splitmix64(&rng) % 4 == 0)
            weft_backoff_pause(&jitter);
        weft_backoff_reset(&jitter);
        int res;
        while ((res = call_once(o)) == -EAGAIN)
            ;
        if (res != 0)
            atomic_fetch_add(&caller_errors, 1);
        check_payload(o, r);
    }
    return NULL;
}

/* Per-object verdict; returns the number of objects whose fn succeeded a
 * number of times other than one. */
static unsigned count_bad_objects(void)
{
    unsigned bad = 0;
    for (size_t r = 0; r < cfg.rounds; r++) {
        int s = atomic_load(&objects[r].successes);
        if (s != 1) {
            if (bad < 5)
                stress_fail(prog.name, cfg.seed, "round %zu: fn succeeded %d times (%d runs)", r, s,
                            atomic_load(&objects[r].runs));
            bad++;
        }
    }
    return bad;
}

int main(int argc, char **argv)
{
    cfg.seed = stress_parse(&prog, argc, argv).seed;
    stress_start("seed %" PRIu64 "\nthreads %u rounds %u%s", cfg.seed, cfg.threads, cfg.rounds,
                 cfg.broken ? " (broken once)" : "");
    objects = calloc(cfg.rounds, sizeof *objects);
    pthread_t *t = calloc(cfg.threads, sizeof *t);
    if (objects == NULL || t == NULL || weft_barrier_init(&start, cfg.threads, "herd") != 0)
        return 2;
    uint64_t rng = cfg.seed;
    for (size_t r = 0; r < cfg.rounds; r++) {
        objects[r].once = (weft_once_t)WEFT_ONCE_INIT;
        atomic_init(&objects[r].fails_left, (int)(stress_splitmix64(&rng) % 8 < 2 ? 1 + r % 2 : 0));
    }
    for (unsigned i = 0; i < cfg.threads; i++)
        if (pthread_create(&t[i], NULL, herd_member, (void *)(uintptr_t)(i + 1)) != 0)
            return 2;
    for (unsigned i = 0; i < cfg.threads; i++)
        pthread_join(t[i], NULL);
    unsigned bad = count_bad_objects();
    long payload = atomic_load(&bad_payload), errors = atomic_load(&caller_errors);
    printf("seed %" PRIu64 ": %u objects with fn not run exactly once, %ld stale payload reads, "
           "%ld caller errors\n",
           cfg.seed, bad, payload, errors);
    bool failed = bad != 0 || payload != 0 || errors != 0;
    (void)weft_barrier_destroy(&start);
    free(objects);
    free(t);
    if (cfg.broken) {
        printf("seed %" PRIu64 ": broken once %s\n", cfg.seed,
               failed ? "caught: PASS" : "NOT caught: FAIL");
        return failed ? 0 : 1;
    }
    printf("seed %" PRIu64 ": %s\n", cfg.seed, failed ? "FAIL" : "PASS");
    return failed ? 1 : 0;
}
