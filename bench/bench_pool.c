/*
 * bench_pool.c - weft_pool_t against libuv's thread pool (uv_queue_work),
 * the same number of threads, in one run:
 *
 *   (a) throughput: N empty tasks submitted up front, until all have run
 *   (b) latency: submit-and-wait round trips, one task in flight
 *   (c) scaling: a CPU-bound job split into chunks, speed-up over 1 thread
 *
 * libuv's pool size is set through UV_THREADPOOL_SIZE before its first use;
 * its round trips run a uv_loop in this thread (completions arrive there).
 *
 *   bench_pool [--threads N] [--tasks N] [--trips N] [--reps N] [--quick]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef WEFT_HAVE_LIBUV
#include <uv.h>
#endif

#include "bench.h"
#include "weft.h"

#define MAX_REPS 15

typedef struct cfg {
    unsigned threads;
    long tasks;
    long trips;
    int reps;
    long work; /* (c): total inner iterations */
} cfg_t;

static double now_s(void)
{
    return (double)weft_now_ns() / 1e9;
}

/* ---- the CPU-bound job ------------------------------------------------------ */

typedef struct chunk {
    long from, to;
    double sum;
} chunk_t;

static double crunch(long from, long to)
{
    double s = 0;
    for (long i = from; i < to; i++)
        s += sqrt((double)i) * 1.0000001;
    return s;
}

static void *chunk_task(void *arg)
{
    chunk_t *c = arg;
    c->sum = crunch(c->from, c->to);
    return NULL;
}

static void *empty_task(void *arg)
{
    return arg;
}

/* ---- weft ----------------------------------------------------------------------- */

static weft_pool_t *weft_make(unsigned threads)
{
    weft_pool_t *p;
    weft_pool_opts_t o = {.name = "bench", .threads = threads};
    if (weft_pool_create(&p, &o) != 0) {
        fprintf(stderr, "bench_pool: cannot create pool\n");
        exit(1);
    }
    return p;
}

static void weft_drain(weft_pool_t *p, uint64_t target)
{
    weft_pool_stats_t st;
    for (;;) {
        weft_pool_stats(p, &st);
        if (st.completed >= target)
            return;
        usleep(50);
    }
}

static double weft_throughput(const cfg_t *c)
{
    weft_pool_t *p = weft_make(c->threads);
    double t0 = now_s();
    for (long i = 0; i < c->tasks; i++)
        if (weft_pool_submit(p, empty_task, NULL, NULL) != 0)
            abort();
    weft_drain(p, (uint64_t)c->tasks);
    double dt = now_s() - t0;
    weft_pool_destroy(p);
    return (double)c->tasks / dt;
}

static double weft_roundtrip(const cfg_t *c)
{
    weft_pool_t *p = weft_make(c->threads);
    double t0 = now_s();
    for (long i = 0; i < c->trips; i++) {
        weft_future_t *f;
        if (weft_pool_submit(p, empty_task, NULL, &f) != 0 ||
            weft_future_wait(f, WEFT_FOREVER, NULL) != 0)
            abort();
        weft_future_release(f);
    }
    double dt = now_s() - t0;
    weft_pool_destroy(p);
    return dt / (double)c->trips * 1e6;
}

static double weft_job(const cfg_t *c, unsigned threads, chunk_t *ch, int nch)
{
    weft_pool_t *p = weft_make(threads);
    weft_future_t *fs[256];
    double t0 = now_s();
    for (int i = 0; i < nch; i++)
        if (weft_pool_submit(p, chunk_task, &ch[i], &fs[i]) != 0)
            abort();
    for (int i = 0; i < nch; i++) {
        weft_future_wait(fs[i], WEFT_FOREVER, NULL);
        weft_future_release(fs[i]);
    }
    double dt = now_s() - t0;
    (void)c;
    weft_pool_destroy(p);
    return dt;
}

/* ---- libuv ---------------------------------------------------------------------- */

#ifdef WEFT_HAVE_LIBUV
static long uv_left;
static long uv_trips_left;

static void uv_empty_work(uv_work_t *req)
{
    (void)req;
}

static void uv_count_done(uv_work_t *req, int status)
{
    (void)req;
    (void)status;
    uv_left--;
}

static double uv_throughput(const cfg_t *c)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_work_t *reqs = calloc((size_t)c->tasks, sizeof *reqs);
    uv_left = c->tasks;
    double t0 = now_s();
    for (long i = 0; i < c->tasks; i++)
        uv_queue_work(&loop, &reqs[i], uv_empty_work, uv_count_done);
    uv_run(&loop, UV_RUN_DEFAULT);
    double dt = now_s() - t0;
    if (uv_left != 0)
        abort();
    uv_loop_close(&loop);
    free(reqs);
    return (double)c->tasks / dt;
}

static void uv_trip_done(uv_work_t *req, int status)
{
    (void)status;
    if (--uv_trips_left > 0)
        uv_queue_work(req->loop, req, uv_empty_work, uv_trip_done);
}

static double uv_roundtrip(const cfg_t *c)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_work_t req;
    uv_trips_left = c->trips;
    double t0 = now_s();
    uv_queue_work(&loop, &req, uv_empty_work, uv_trip_done);
    uv_run(&loop, UV_RUN_DEFAULT);
    double dt = now_s() - t0;
    uv_loop_close(&loop);
    return dt / (double)c->trips * 1e6;
}

static void uv_chunk_work(uv_work_t *req)
{
    chunk_task(req->data);
}

static void uv_chunk_done(uv_work_t *req, int status)
{
    (void)req;
    (void)status;
}

static double uv_job(chunk_t *ch, int nch)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_work_t reqs[256];
    double t0 = now_s();
    for (int i = 0; i < nch; i++) {
        reqs[i].data = &ch[i];
        uv_queue_work(&loop, &reqs[i], uv_chunk_work, uv_chunk_done);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    double dt = now_s() - t0;
    uv_loop_close(&loop);
    return dt;
}
#endif

/* ---- driver --------------------------------------------------------------------- */

static void parse(cfg_t *c, int argc, char **argv)
{
    c->threads = weft_cpu_count();
    c->tasks = 500000;
    c->trips = 20000;
    c->reps = 5;
    c->work = 200000000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "0";
        if (strcmp(a, "--threads") == 0 && ++i)
            c->threads = (unsigned)atoi(v);
        else if (strcmp(a, "--tasks") == 0 && ++i)
            c->tasks = atol(v);
        else if (strcmp(a, "--trips") == 0 && ++i)
            c->trips = atol(v);
        else if (strcmp(a, "--reps") == 0 && ++i)
            c->reps = atoi(v);
        else if (strcmp(a, "--quick") == 0) {
            c->tasks = 50000;
            c->trips = 2000;
            c->reps = 1;
            c->work = 20000000;
        } else {
            fprintf(stderr,
                    "usage: %s [--threads N] [--tasks N] [--trips N] [--reps N] "
                    "[--quick]\n",
                    argv[0]);
            exit(2);
        }
    }
    if (c->threads == 0 || c->tasks <= 0 || c->trips <= 0 || c->reps <= 0 || c->reps > MAX_REPS)
        exit(2);
}

static void split(const cfg_t *c, chunk_t *ch, int nch)
{
    for (int i = 0; i < nch; i++) {
        ch[i].from = c->work / nch * i;
        ch[i].to = i == nch - 1 ? c->work : c->work / nch * (i + 1);
    }
}

static void bench_scaling(const cfg_t *c)
{
    int nch = (int)(c->threads * 8 > 256 ? 256 : c->threads * 8);
    chunk_t ch[256];
    split(c, ch, nch);
    double vs[MAX_REPS], v1[MAX_REPS], vn[MAX_REPS], vu[MAX_REPS] = {0};
    for (int r = 0; r < c->reps; r++) {
        double t0 = now_s();
        volatile double s = crunch(0, c->work);
        (void)s;
        vs[r] = now_s() - t0;
        v1[r] = weft_job(c, 1, ch, nch);
        vn[r] = weft_job(c, c->threads, ch, nch);
#ifdef WEFT_HAVE_LIBUV
        vu[r] = uv_job(ch, nch);
#endif
    }
    double serial = bench_median(vs, (size_t)(c->reps)), w1 = bench_median(v1, (size_t)(c->reps));
    double wn = bench_median(vn, (size_t)(c->reps)), un = bench_median(vu, (size_t)(c->reps));
    printf("(c) CPU job, %d chunks   %10.3f s %10.3f s    speed-up over 1 thread: "
           "weft %.2fx, libuv %.2fx (serial loop %.3f s, weft 1 thread %.3f s)\n",
           nch, wn, un, w1 / wn, un > 0 ? w1 / un : 0, serial, w1);
}

int main(int argc, char **argv)
{
    cfg_t c;
    parse(&c, argc, argv);
    char nbuf[16];
    snprintf(nbuf, sizeof nbuf, "%u", c.threads);
    setenv("UV_THREADPOOL_SIZE", nbuf, 1); /* before libuv's first uv_queue_work */
    printf("bench_pool: %u threads (both), %ld tasks, %ld round trips, median of %d; "
           "load average %.2f at start\n",
           c.threads, c.tasks, c.trips, c.reps, bench_loadavg());
#ifndef WEFT_HAVE_LIBUV
    printf("libuv not found: its columns are 0\n");
#endif
    printf("%-26s %12s %12s %8s\n", "", "weft", "libuv", "ratio");
    double vwt[MAX_REPS], vwr[MAX_REPS], vut[MAX_REPS] = {0}, vur[MAX_REPS] = {0};
    for (int r = 0; r < c.reps; r++) {
        vwt[r] = weft_throughput(&c);
        vwr[r] = weft_roundtrip(&c);
#ifdef WEFT_HAVE_LIBUV
        vut[r] = uv_throughput(&c);
        vur[r] = uv_roundtrip(&c);
#endif
    }
    double wt = bench_median(vwt, (size_t)(c.reps)), wr = bench_median(vwr, (size_t)(c.reps));
    double ut = bench_median(vut, (size_t)(c.reps)), ur = bench_median(vur, (size_t)(c.reps));
    printf("(a) empty tasks, tasks/s   %12.0f %12.0f %7.2fx\n", wt, ut, ut > 0 ? wt / ut : 0);
    printf("(b) round trip, us         %12.2f %12.2f %7.2fx\n", wr, ur, wr > 0 ? ur / wr : 0);
    bench_scaling(&c);
    return 0;
}
