/*
 * test_loop_stress - cross-thread wake-ups of one loop under load, seedable.
 *
 *   loop_stress [--threads N] [--iters N] [--seed S] [--wait-ms N] [--broken]
 *
 * N sender threads each run --iters rounds: publish the round number in
 * their slot, weft_async_send() the loop, and wait (at most --wait-ms)
 * until the loop's callback has seen that round; random pauses from the
 * seed vary the interleavings. The loop thread runs the loop and, in the
 * callback, copies every slot to "seen". A round whose wait times out is
 * a lost wake-up: the send happened, the loop slept on. A repeating timer
 * keeps the loop iterating without ever looking at the async handle, so it
 * cannot hide a lost wake-up.
 *
 * --broken makes the loop's wake-up drop its eventfd write (the internal
 * weft__loop_fault hook). The run succeeds (exit 0) only if the harness
 * reports the lost wake-up.
 *
 * The seed is printed first and in every failure line.
 */
// ctest default --threads 3 --iters 20000
// ctest one --threads 1 --iters 20000 --seed 5
// ctest broken --threads 2 --iters 20000 --wait-ms 200 --broken
// ctest-timeout 60
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal/loop.h"
#include "weft.h"

enum { MAX_THREADS = 32 };

static struct {
    unsigned threads;
    unsigned long iters;
    uint64_t seed;
    long wait_ms;
    bool broken;
} cfg = {2, 10000, 0, 5000, false};

static weft_async_t async_h;
static unsigned long sent[MAX_THREADS]; /* atomic: a sender's current round */
static unsigned long seen[MAX_THREADS]; /* atomic: what the loop saw */
static int failed;                      /* atomic */
static int finished;                    /* atomic: senders done */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void on_async(weft_async_t *a)
{
    (void)a;
    for (unsigned i = 0; i < cfg.threads; i++)
        __atomic_store_n(&seen[i], __atomic_load_n(&sent[i], __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
}

static bool wait_seen(unsigned id, unsigned long round)
{
    uint64_t end = weft_now_ns() + (uint64_t)cfg.wait_ms * 1000000u;
    while (__atomic_load_n(&seen[id], __ATOMIC_ACQUIRE) < round) {
        if (weft_now_ns() > end)
            return false;
        sched_yield();
    }
    return true;
}

static void *sender(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    uint64_t rng = cfg.seed * 2654435761u + id + 1;
    for (unsigned long r = 1; r <= cfg.iters && !__atomic_load_n(&failed, __ATOMIC_RELAXED); r++) {
        __atomic_store_n(&sent[id], r, __ATOMIC_RELEASE);
        weft_async_send(&async_h);
        if (rng_next(&rng) % 64 == 0)
            usleep((useconds_t)(rng_next(&rng) % 100));
        if (!wait_seen(id, r)) {
            printf("seed %llu: sender %u: round %lu not seen by the loop after %ld ms: "
                   "lost wake-up\n",
                   (unsigned long long)cfg.seed, id, r, cfg.wait_ms);
            __atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
        }
    }
    __atomic_fetch_add(&finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void tick(weft_timer_t *t)
{
    (void)t;
}

static void parse(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "0";
        if (strcmp(argv[i], "--broken") == 0) {
            cfg.broken = true;
            continue;
        }
        if (strcmp(argv[i], "--threads") == 0)
            cfg.threads = (unsigned)atoi(v);
        else if (strcmp(argv[i], "--iters") == 0)
            cfg.iters = strtoul(v, NULL, 10);
        else if (strcmp(argv[i], "--seed") == 0)
            cfg.seed = strtoull(v, NULL, 10);
        else if (strcmp(argv[i], "--wait-ms") == 0)
            cfg.wait_ms = atol(v);
        else {
            fprintf(stderr, "usage: loop_stress [--threads N] [--iters N] [--seed S] "
                            "[--wait-ms N] [--broken]\n");
            exit(2);
        }
        i++;
    }
    if (cfg.threads < 1 || cfg.threads > MAX_THREADS || cfg.iters < 1 || cfg.wait_ms < 1) {
        fprintf(stderr, "loop_stress: bad argument\n");
        exit(2);
    }
}

int main(int argc, char **argv)
{
    cfg.seed = weft_now_ns() % 1000000;
    parse(argc, argv);
    printf("seed %llu threads %u iters %lu%s\n", (unsigned long long)cfg.seed, cfg.threads,
           cfg.iters, cfg.broken ? " (broken wake-up)" : "");
    fflush(stdout);
    weft_loop_t *l;
    if (weft_loop_create(&l, NULL) != 0)
        return 1;
    weft_async_init(l, &async_h);
    weft_async_start(&async_h, on_async);
    weft_timer_t t;
    weft_timer_init(l, &t);
    weft_timer_start(&t, tick, 10000000, 10000000);
    if (cfg.broken)
        __atomic_store_n(&weft__loop_fault, 1, __ATOMIC_RELAXED);
    pthread_t th[MAX_THREADS];
    for (unsigned i = 0; i < cfg.threads; i++)
        pthread_create(&th[i], NULL, sender, (void *)(uintptr_t)i);
    while (__atomic_load_n(&finished, __ATOMIC_ACQUIRE) < (int)cfg.threads)
        weft_loop_run(l, WEFT_RUN_ONCE);
    for (unsigned i = 0; i < cfg.threads; i++)
        pthread_join(th[i], NULL);
    weft_loop_destroy(l);
    if (cfg.broken) {
        printf("seed %llu: broken wake-up %s\n", (unsigned long long)cfg.seed,
               failed ? "caught" : "NOT caught");
        return failed ? 0 : 1;
    }
    printf("seed %llu: %s\n", (unsigned long long)cfg.seed, failed ? "FAILED" : "ok");
    return failed ? 1 : 0;
}
