/*
 * bench.h - helpers shared by weft's benchmark programs (bench/bench_*.c).
 *
 * Every benchmark measures weft against its anchor in the same run and
 * prints the facts a reader needs to judge the numbers: the machine (CPU
 * model, CPU count, kernel, compiler, C library), the load average when it
 * started, and the exact command. Numbers are medians over repeated runs;
 * bench_median() does the arithmetic.
 *
 * Header-only (static inline), so each program stays a single source file.
 * None of these helpers are thread-safe unless said so: call them from the
 * main thread, outside the measured regions.
 */
#ifndef WEFT_BENCH_H
#define WEFT_BENCH_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <gnu/libc-version.h>

/* Nanoseconds on CLOCK_MONOTONIC (a vDSO call: about 20 ns). Thread-safe. */
static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sleep for ms milliseconds (restarted after signals). Thread-safe. */
static inline void bench_sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static inline int bench__cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n), n >= 1; sorts v in place. */
static inline double bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, bench__cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The first "model name" line of /proc/cpuinfo, without the key, in buf. */
static inline const char *bench_cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL)
        return buf;
    char line[256];
    while (fgets(line, sizeof line, f) != NULL) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || colon == NULL)
            continue;
        snprintf(buf, len, "%s", colon + 2);
        buf[strcspn(buf, "\n")] = '\0';
        break;
    }
    fclose(f);
    return buf;
}

/* The compiler that built the benchmark (and, with it, libweft). */
static inline const char *bench_compiler(void)
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown compiler";
#endif
}

/* Print the machine, the load and the command, one fact per line. */
static inline void bench_print_machine(int argc, char **argv)
{
    char cpu[128];
    struct utsname u;
    if (uname(&u) != 0)
        snprintf(u.release, sizeof u.release, "unknown");
    double load[3] = {-1, -1, -1};
    (void)getloadavg(load, 3);
    printf("machine:  %s, %ld CPUs online\n", bench_cpu_model(cpu, sizeof cpu),
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("kernel:   Linux %s\n", u.release);
    printf("compiler: %s; glibc %s\n", bench_compiler(), gnu_get_libc_version());
    printf("load:     %.2f %.2f %.2f (1, 5, 15 min averages at start)\n", load[0], load[1],
           load[2]);
    printf("command: ");
    for (int i = 0; i < argc; i++)
        printf(" %s", argv[i]);
    printf("\n");
}

/*
 * An idle second thread. glibc takes single-threaded shortcuts while a
 * process has one thread, so uncontended numbers are only comparable with
 * another thread alive. It blocks in read() on a pipe, so it touches none of
 * the primitives under test, and leaves when the pipe is closed.
 */
typedef struct bench_idle {
    pthread_t thread;
    int fds[2];
} bench_idle_t;

static inline void *bench__idle_main(void *arg)
{
    char c;
    while (read(*(int *)arg, &c, 1) > 0)
        ;
    return NULL;
}

/* Start the idle thread: 0, or -1 (with a message) on failure. */
static inline int bench_idle_start(bench_idle_t *idle)
{
    if (pipe(idle->fds) != 0) {
        perror("bench: pipe");
        return -1;
    }
    int r = pthread_create(&idle->thread, NULL, bench__idle_main, &idle->fds[0]);
    if (r != 0) {
        fprintf(stderr, "bench: pthread_create: %s\n", strerror(r));
        close(idle->fds[0]);
        close(idle->fds[1]);
        return -1;
    }
    return 0;
}

static inline void bench_idle_stop(bench_idle_t *idle)
{
    close(idle->fds[1]);
    pthread_join(idle->thread, NULL);
    close(idle->fds[0]);
}

#endif /* WEFT_BENCH_H */
