/*
 * bench_proc.c - threads (weft_pool_t) against processes (weft_proc_pool_t)
 * for the same work, side by side:
 *
 *   - a CPU-bound job split into chunks: time and speed-up over one thread
 *   - the per-task overhead: an empty task, one in flight (round trip), and
 *     many queued at once (cost per task at full throughput)
 *
 *   bench_proc [--workers N] [--tasks N] [--reps N] [--quick]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "weft.h"

#define MAX_REPS 15

typedef struct cfg {
    unsigned workers;
    long tasks;
    int reps;
    long work;
} cfg_t;

static double now_s(void)
{
    return (double)weft_now_ns() / 1e9;
}

typedef struct range {
    long from, to;
} range_t;

static double crunch(long from, long to)
{
    double s = 0;
    for (long i = from; i < to; i++)
        s += sqrt((double)i) * 1.0000001;
    return s;
}

/* ---- the same work as a thread task and as a process task ----------------- */

typedef struct tchunk {
    range_t r;
    double sum;
} tchunk_t;

static void *thread_chunk(void *arg)
{
    tchunk_t *c = arg;
    c->sum = crunch(c->r.from, c->r.to);
    return NULL;
}

static int proc_chunk(const void *in, size_t len, void **out, size_t *out_len)
{
    if (len != sizeof(range_t))
        return -EINVAL;
    const range_t *r = in;
    double *s = malloc(sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    *s = crunch(r->from, r->to);
    *out = s;
    *out_len = sizeof *s;
    return 0;
}

static void *thread_empty(void *arg)
{
    return arg;
}

static int proc_empty(const void *in, size_t len, void **out, size_t *out_len)
{
    (void)in, (void)len, (void)out, (void)out_len;
    return 0;
}

static weft_pool_t *tpool(unsigned n)
{
    weft_pool_t *p;
    weft_pool_opts_t o = {.name = "bench-threads", .threads = n};
    if (weft_pool_create(&p, &o) != 0)
        exit(1);
    return p;
}

static weft_proc_pool_t *ppool(unsigned n)
{
    weft_proc_pool_t *p;
    weft_proc_opts_t o = {.name = "bench-procs", .workers = n};
    if (weft_proc_pool_create(&p, &o) != 0)
        exit(1);
    return p;
}

/* ---- the CPU job ----------------------------------------------------------- */

static double job_threads(const cfg_t *c, unsigned n, int nch)
{
    tchunk_t ch[256];
    weft_future_t *f[256];
    weft_pool_t *p = tpool(n);
    double t0 = now_s();
    for (int i = 0; i < nch; i++) {
        ch[i].r = (range_t){c->work / nch * i, i == nch - 1 ? c->work : c->work / nch * (i + 1)};
        if (weft_pool_submit(p, thread_chunk, &ch[i], &f[i]) != 0)
            exit(1);
    }
    for (int i = 0; i < nch; i++) {
        weft_future_wait(f[i], WEFT_FOREVER, NULL);
        weft_future_release(f[i]);
    }
    double dt = now_s() - t0;
    weft_pool_destroy(p);
    return dt;
}

static double job_procs(const cfg_t *c, unsigned n, int nch)
{
    weft_proc_future_t *f[256];
    weft_proc_pool_t *p = ppool(n);
    double t0 = now_s();
    for (int i = 0; i < nch; i++) {
        range_t r = {c->work / nch * i, i == nch - 1 ? c->work : c->work / nch * (i + 1)};
        if (weft_proc_submit(p, proc_chunk, &r, sizeof r, &f[i]) != 0)
            exit(1);
    }
    for (int i = 0; i < nch; i++) {
        if (weft_proc_wait(f[i], WEFT_FOREVER, NULL, NULL) != 0)
            exit(1);
        weft_proc_release(f[i]);
    }
    double dt = now_s() - t0;
    weft_proc_pool_destroy(p);
    return dt;
}

/* ---- per-task overhead ----------------------------------------------------- */

static double trip_threads(const cfg_t *c, weft_pool_t *p)
{
    double t0 = now_s();
    for (long i = 0; i < c->tasks; i++) {
        weft_future_t *f;
        weft_pool_submit(p, thread_empty, NULL, &f);
        weft_future_wait(f, WEFT_FOREVER, NULL);
        weft_future_release(f);
    }
    return (now_s() - t0) / (double)c->tasks * 1e6;
}

static double trip_procs(const cfg_t *c, weft_proc_pool_t *p)
{
    double t0 = now_s();
    for (long i = 0; i < c->tasks; i++) {
        weft_proc_future_t *f;
        weft_proc_submit(p, proc_empty, NULL, 0, &f);
        weft_proc_wait(f, WEFT_FOREVER, NULL, NULL);
        weft_proc_release(f);
    }
    return (now_s() - t0) / (double)c->tasks * 1e6;
}

static double bulk_threads(const cfg_t *c, weft_pool_t *p)
{
    weft_future_t **f = malloc((size_t)c->tasks * sizeof *f);
    double t0 = now_s();
    for (long i = 0; i < c->tasks; i++)
        weft_pool_submit(p, thread_empty, NULL, &f[i]);
    for (long i = 0; i < c->tasks; i++) {
        weft_future_wait(f[i], WEFT_FOREVER, NULL);
        weft_future_release(f[i]);
    }
    double us = (now_s() - t0) / (double)c->tasks * 1e6;
    free(f);
    return us;
}

static double bulk_procs(const cfg_t *c, weft_proc_pool_t *p)
{
    weft_proc_future_t **f = malloc((size_t)c->tasks * sizeof *f);
    double t0 = now_s();
    for (long i = 0; i < c->tasks; i++)
        weft_proc_submit(p, proc_empty, NULL, 0, &f[i]);
    for (long i = 0; i < c->tasks; i++) {
        weft_proc_wait(f[i], WEFT_FOREVER, NULL, NULL);
        weft_proc_release(f[i]);
    }
    double us = (now_s() - t0) / (double)c->tasks * 1e6;
    free(f);
    return us;
}

static void parse(cfg_t *c, int argc, char **argv)
{
    *c = (cfg_t){.workers = weft_cpu_count(), .tasks = 20000, .reps = 3, .work = 200000000};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "0";
        if (strcmp(argv[i], "--workers") == 0 && ++i)
            c->workers = (unsigned)atoi(v);
        else if (strcmp(argv[i], "--tasks") == 0 && ++i)
            c->tasks = atol(v);
        else if (strcmp(argv[i], "--reps") == 0 && ++i)
            c->reps = atoi(v);
        else if (strcmp(argv[i], "--quick") == 0)
            *c = (cfg_t){.workers = c->workers, .tasks = 2000, .reps = 1, .work = 20000000};
        else {
            fprintf(stderr, "usage: %s [--workers N] [--tasks N] [--reps N] [--quick]\n", argv[0]);
            exit(2);
        }
    }
    if (c->workers == 0 || c->workers > 32 || c->tasks <= 0 || c->reps <= 0 || c->reps > MAX_REPS)
        exit(2);
}

int main(int argc, char **argv)
{
    cfg_t c;
    parse(&c, argc, argv);
    int nch = (int)c.workers * 8;
    printf("bench_proc: %u workers (threads vs processes), %ld tasks, median of %d; "
           "load average %.2f at start\n",
           c.workers, c.tasks, c.reps, bench_loadavg());
    double v[8][MAX_REPS];
    for (int r = 0; r < c.reps; r++) {
        v[0][r] = job_threads(&c, 1, nch);
        v[1][r] = job_threads(&c, c.workers, nch);
        v[2][r] = job_procs(&c, 1, nch);
        v[3][r] = job_procs(&c, c.workers, nch);
        weft_pool_t *tp = tpool(c.workers);
        weft_proc_pool_t *pp = ppool(c.workers);
        v[4][r] = trip_threads(&c, tp);
        v[5][r] = trip_procs(&c, pp);
        v[6][r] = bulk_threads(&c, tp);
        v[7][r] = bulk_procs(&c, pp);
        weft_pool_destroy(tp);
        weft_proc_pool_destroy(pp);
    }
    double t1 = bench_median(v[0], (size_t)(c.reps)), tn = bench_median(v[1], (size_t)(c.reps));
    double p1 = bench_median(v[2], (size_t)(c.reps)), pn = bench_median(v[3], (size_t)(c.reps));
    double tt = bench_median(v[4], (size_t)(c.reps)), pt = bench_median(v[5], (size_t)(c.reps));
    double tb = bench_median(v[6], (size_t)(c.reps)), pb = bench_median(v[7], (size_t)(c.reps));
    printf("%-34s %12s %12s\n", "", "threads", "processes");
    printf("CPU job, %3d chunks, 1 worker (s)   %12.3f %12.3f\n", nch, t1, p1);
    printf("CPU job, %3d chunks, %u workers (s)  %12.3f %12.3f\n", nch, c.workers, tn, pn);
    printf("speed-up over 1 worker             %11.2fx %11.2fx\n", t1 / tn, p1 / pn);
    printf("empty task, round trip (us)        %12.2f %12.2f\n", tt, pt);
    printf("empty task, queued in bulk (us)    %12.3f %12.3f\n", tb, pb);
    return 0;
}
