/*
 * bench_check.c - what checking costs: a lock-heavy pthread program
 * (4 threads, 16 locks, nested pairs taken in a consistent order, millions
 * of acquisitions) timed plain, under `weft check` (the preload library),
 * under ThreadSanitizer and under Valgrind's Helgrind, side by side in one
 * run. The workload is this same program run with --work; the driver runs
 * it as child processes and prints each time and its ratio to plain.
 *
 *   bench_check [--quick] [--iters N] [--no-helgrind]
 *
 * Needs, beside it in the build tree: bench_check_tsan (the same source
 * built with -fsanitize=thread), libweft-preload.so one directory up, and
 * valgrind on the PATH (each missing tool is skipped with a note).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define THREADS 4
#define LOCKS 16

static pthread_mutex_t locks[LOCKS];
static long counters[LOCKS];
static long iters = 500000;

static void *work(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (long i = 0; i < iters; i++) {
        unsigned a = (unsigned)rand_r(&seed) % LOCKS, b = (unsigned)rand_r(&seed) % LOCKS;
        if (a == b)
            b = (a + 1) % LOCKS;
        unsigned lo = a < b ? a : b, hi = a < b ? b : a; /* one global order */
        pthread_mutex_lock(&locks[lo]);
        pthread_mutex_lock(&locks[hi]);
        counters[lo]++;
        counters[hi]--;
        pthread_mutex_unlock(&locks[hi]);
        pthread_mutex_unlock(&locks[lo]);
    }
    return NULL;
}

static int run_work(void)
{
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_init(&locks[i], NULL);
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, work, (void *)(i + 1));
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    long sum = 0;
    for (int i = 0; i < LOCKS; i++)
        sum += counters[i];
    return sum == 0 ? 0 : 1;
}

#ifndef WEFT_BENCH_TSAN
#include "weft.h"

/* The switch itself, measured in this process: one thread, an uncontended
 * nested pair (lock a, lock b, unlock b, unlock a), ns per pair. */
static weft_mutex_t wa = WEFT_MUTEX_INIT("a"), wb = WEFT_MUTEX_INIT("b");
static pthread_mutex_t pa = PTHREAD_MUTEX_INITIALIZER, pb = PTHREAD_MUTEX_INITIALIZER;

static double now_s(void);

static double pair_ns(bool weft, long n)
{
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        if (weft) {
            weft_mutex_lock(&wa);
            weft_mutex_lock(&wb);
            weft_mutex_unlock(&wb);
            weft_mutex_unlock(&wa);
        } else {
            pthread_mutex_lock(&pa);
            pthread_mutex_lock(&pb);
            pthread_mutex_unlock(&pb);
            pthread_mutex_unlock(&pa);
        }
    }
    return (now_s() - t0) * 1e9 / (double)n;
}

static double best_pair_ns(bool weft, long n)
{
    double best = 1e30;
    for (int i = 0; i < 5; i++) {
        double t = pair_ns(weft, n);
        best = t < best ? t : best;
    }
    return best;
}

/* Checking off costs weft's locks one predictable branch; on, the fast
 * path of the check layer. glibc's pair for scale (in a process with one
 * thread glibc skips its atomic instructions; this process has one). */
static void switch_cost(long n)
{
    if (weft_check_enabled()) {
        printf("\nweft's own mutex: skipped (checking already on in this process)\n");
        return;
    }
    double g = best_pair_ns(false, n), off = best_pair_ns(true, n);
    weft_check_enable();
    double on = best_pair_ns(true, n);
    printf("\none thread, uncontended nested pair (lock, lock, unlock, unlock), best of 5:\n");
    printf("%-28s %9.1f ns\n", "glibc pthread_mutex", g);
    printf("%-28s %9.1f ns\n", "weft_mutex, checking off", off);
    printf("%-28s %9.1f ns   (%.2fx off)\n", "weft_mutex, checking on", on, on / off);
}
#endif

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs argv with extra environment `env` (NAME=VALUE or NULL); returns the
 * wall time in seconds, or -1 if it failed. */
static double timed_run(char *const argv[], const char *env1, const char *env2)
{
    double t0 = now_s();
    pid_t pid = fork();
    if (pid == 0) {
        if (env1 != NULL)
            putenv((char *)env1);
        if (env2 != NULL)
            putenv((char *)env2);
        int null = open("/dev/null", 1);
        if (null >= 0)
            dup2(null, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    return now_s() - t0;
}

static void dir_of_self(char *out, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", out, len - 1);
    out[n > 0 ? n : 0] = 0;
    char *s = strrchr(out, '/');
    if (s != NULL)
        *s = 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median wall time of `reps` runs (at most 9), or -1 if one failed. */
static double median_of(int reps, char *const argv[], const char *e1, const char *e2)
{
    double r[9];
    if (reps > 9)
        reps = 9;
    for (int i = 0; i < reps; i++)
        if ((r[i] = timed_run(argv, e1, e2)) < 0)
            return -1;
    qsort(r, (size_t)reps, sizeof r[0], cmp_double);
    return r[reps / 2];
}

int main(int argc, char **argv)
{
    int quick = 0, helgrind = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--work") == 0 && i + 1 < argc)
            return iters = atol(argv[i + 1]), run_work();
        else if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--no-helgrind") == 0)
            helgrind = 0;
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            iters = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_check [--quick] [--iters N] [--no-helgrind]\n");
            return 2;
        }
    }
    if (quick)
        iters = 50000;
    char dir[PATH_MAX], self[PATH_MAX + 32], tsan[PATH_MAX + 32], pre[PATH_MAX + 64], n[32];
    dir_of_self(dir, sizeof dir);
    snprintf(self, sizeof self, "%s/bench_check", dir);
    snprintf(tsan, sizeof tsan, "%s/bench_check_tsan", dir);
    snprintf(pre, sizeof pre, "LD_PRELOAD=%s/../libweft-preload.so", dir);
    snprintf(n, sizeof n, "%ld", iters);
    int reps = quick ? 1 : 7;
    printf("bench_check: %d threads, %d locks, nested pairs, %ld x 2 acquisitions per thread\n",
           THREADS, LOCKS, iters);
    printf("machine: %ld CPUs online; each figure the median of %d runs\n\n",
           sysconf(_SC_NPROCESSORS_ONLN), reps);
    char *plain_argv[] = {self, "--work", n, NULL};
    /* Plain and checked runs alternate, so a change in the machine's load
     * during the benchmark falls on both. */
    double plain = -1, chk = -1, pr[9], cr[9];
    bool have_pre = true;
    for (int i = 0; i < reps; i++) {
        pr[i] = timed_run(plain_argv, NULL, NULL);
        if (pr[i] < 0) {
            fprintf(stderr, "bench_check: the plain run failed\n");
            return 1;
        }
        if (have_pre && (cr[i] = timed_run(plain_argv, pre, "WEFT_CHECK=1")) < 0)
            have_pre = false;
    }
    qsort(pr, (size_t)reps, sizeof pr[0], cmp_double);
    plain = pr[reps / 2];
    if (have_pre) {
        qsort(cr, (size_t)reps, sizeof cr[0], cmp_double);
        chk = cr[reps / 2];
    }
    printf("%-28s %9.3f s   %7.2fx\n", "plain (glibc)", plain, 1.0);
    if (chk > 0)
        printf("%-28s %9.3f s   %7.2fx\n", "weft check (preload)", chk, chk / plain);
    else
        printf("%-28s skipped (libweft-preload.so not found)\n", "weft check (preload)");
    char *tsan_argv[] = {tsan, "--work", n, NULL};
    double ts = access(tsan, X_OK) == 0 ? median_of(reps, tsan_argv, NULL, NULL) : -1;
    if (ts > 0)
        printf("%-28s %9.3f s   %7.2fx\n", "ThreadSanitizer", ts, ts / plain);
    else
        printf("%-28s skipped (bench_check_tsan not built)\n", "ThreadSanitizer");
    if (helgrind) {
        /* Helgrind is slow: time 1/100 and 2/100 of the work and scale the
         * difference, so Valgrind's start-up cost is not multiplied. */
        char n1[32], n2[32];
        long w1 = iters / 100 > 0 ? iters / 100 : 1;
        snprintf(n1, sizeof n1, "%ld", w1);
        snprintf(n2, sizeof n2, "%ld", 2 * w1);
        char *hg1[] = {"valgrind", "--tool=helgrind", "-q", self, "--work", n1, NULL};
        char *hg2[] = {"valgrind", "--tool=helgrind", "-q", self, "--work", n2, NULL};
        double t1 = timed_run(hg1, NULL, NULL), t2 = t1 > 0 ? timed_run(hg2, NULL, NULL) : -1;
        double hg = (t2 - t1) * (double)iters / (double)w1;
        if (t1 > 0 && t2 > t1)
            printf("%-28s %9.3f s   %7.2fx   (scaled from 1/100 and 2/100 of the work)\n",
                   "Helgrind", hg, hg / plain);
        else
            printf("%-28s skipped (valgrind not found or failed)\n", "Helgrind");
    }
    if (chk > 0)
        printf("\nweft check / plain = %.2f (bar: at most 1.5)\n", chk / plain);
#ifndef WEFT_BENCH_TSAN
    switch_cost(quick ? 200000 : 2000000);
#endif
    return 0;
}
