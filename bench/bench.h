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

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <gnu/libc-version.h>

#include "internal/base.h" /* weft__cpu_relax() */

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

/* The 1-minute load average, to judge how busy the machine was; -1 if unknown. */
static inline double bench_loadavg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL && fscanf(f, "%lf", &l) != 1)
        l = -1;
    if (f != NULL)
        fclose(f);
    return l;
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

/* Sanitizer builds run, but their numbers measure the sanitizer. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define BENCH_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define BENCH_SANITIZED 1
#endif
#endif

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
#ifdef BENCH_SANITIZED
    printf("warning:  sanitizer build: these numbers measure the sanitizer, not weft\n");
#endif
    printf("command: ");
    for (int i = 0; i < argc; i++)
        printf(" %s", argv[i]);
    printf("\n");
}

/*
 * How much of the machine other processes used while a benchmark ran: CPU
 * time busy on all CPUs (/proc/stat) minus this process's own (getrusage).
 * A figure of a few per cent means the numbers are the benchmark's own.
 */
typedef struct bench_cpu {
    double busy_s; /* seconds of CPU time the whole machine was busy */
    double self_s; /* seconds of CPU time this process used */
    double wall_s;
} bench_cpu_t;

static inline void bench_cpu_sample(bench_cpu_t *c)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (f != NULL) {
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]) != 8)
            memset(v, 0, sizeof v);
        fclose(f);
    }
    /* Busy: everything but idle (v[3]) and iowait (v[4]). */
    unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    c->busy_s = (double)busy / (double)sysconf(_SC_CLK_TCK);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    c->self_s = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    c->wall_s = (double)bench_now_ns() / 1e9;
}

/* Print the share of all CPUs' time that other processes used since *start. */
static inline void bench_print_interference(const bench_cpu_t *start)
{
    bench_cpu_t end;
    bench_cpu_sample(&end);
    double capacity = (end.wall_s - start->wall_s) * (double)sysconf(_SC_NPROCESSORS_ONLN);
    double other = (end.busy_s - start->busy_s) - (end.self_s - start->self_s);
    if (other < 0)
        other = 0; /* The two clocks tick at different granularities. */
    double load[3] = {-1, -1, -1};
    (void)getloadavg(load, 3);
    printf("\ninterference: other processes used %.1f%% of the CPUs' time during this run "
           "(load at end %.2f %.2f %.2f)\n",
           capacity > 0 ? 100.0 * other / capacity : 0.0, load[0], load[1], load[2]);
}

/*
 * The costs that decide how a lock should wait, measured here and now:
 * one pause instruction, one sched_yield() with nothing else to run, and a
 * round trip between two threads that hand a token back and forth, either
 * spinning on it or sleeping on it in futex_wait (so each hand-over wakes a
 * sleeping thread). Spinning hand-overs only mean something with at least
 * two CPUs; both are printed as measured.
 */
typedef struct bench__pingpong {
    alignas(64) uint32_t turn; /* atomic: whose move it is, 0 or 1 */
    unsigned rounds;
    bool park;
} bench__pingpong_t;

static inline void bench__pp_play(bench__pingpong_t *pp, uint32_t me)
{
    for (unsigned i = 0; i < pp->rounds; i++) {
        uint32_t v;
        unsigned spins = 0;
        /* Acquire: pairs with the release store of the other player. */
        while ((v = __atomic_load_n(&pp->turn, __ATOMIC_ACQUIRE)) != me) {
            if (pp->park)
                syscall(SYS_futex, &pp->turn, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
            else if (++spins % 4096 == 0)
                (void)sched_yield(); /* The other player lost its CPU. */
            else
                weft__cpu_relax();
        }
        /* The futex word changes before the wake, so a player that has not
         * slept yet sees the new turn and never sleeps through it. */
        __atomic_store_n(&pp->turn, 1 - me, __ATOMIC_RELEASE);
        if (pp->park)
            syscall(SYS_futex, &pp->turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
}

static inline void *bench__pp_main(void *arg)
{
    bench__pp_play(arg, 1);
    return NULL;
}

/* Mean ns per round trip (two hand-overs), or -1 if no thread could start. */
static inline double bench__pingpong(bool park, unsigned rounds)
{
    static bench__pingpong_t pp;
    pthread_t t;
    pp = (bench__pingpong_t){.turn = 0, .rounds = rounds, .park = park};
    if (pthread_create(&t, NULL, bench__pp_main, &pp) != 0)
        return -1;
    uint64_t t0 = bench_now_ns();
    bench__pp_play(&pp, 0);
    pthread_join(t, NULL);
    return (double)(bench_now_ns() - t0) / rounds;
}

static inline void bench_print_costs(void)
{
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < 100000; i++)
        weft__cpu_relax();
    double pause = (double)(bench_now_ns() - t0) / 100000;
    t0 = bench_now_ns();
    for (int i = 0; i < 10000; i++)
        (void)sched_yield();
    double yield = (double)(bench_now_ns() - t0) / 10000;
    double spin = bench__pingpong(false, 20000), futex = bench__pingpong(true, 300);
    printf("costs:    pause %.0f ns, sched_yield %.2f us; hand-over round trip between two\n"
           "          threads: spinning %.2f us, futex wake %.1f us\n",
           pause, yield / 1e3, spin / 1e3, futex / 1e3);
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
