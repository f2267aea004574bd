/*
 * wtest.h - what every weft test file shares.
 *
 * Unit tests use cmocka. A test file ends with
 *
 *     static const struct CMUnitTest tests[] = { cmocka_unit_test(test_a), ... };
 *     WTEST_MAIN(tests)
 *
 * and CTest runs each case as `exe test_a` in its own process (see
 * cmake/WeftTests.cmake). Run with no argument, every case runs in turn.
 * A name that matches no case is an error, so a typo cannot pass.
 */
#ifndef WEFT_TESTS_WTEST_H
#define WEFT_TESTS_WTEST_H

#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define WTEST_MAIN(tests)                                                             \
    int main(int argc, char **argv)                                                   \
    {                                                                                 \
        size_t n_ = sizeof(tests) / sizeof((tests)[0]);                               \
        if (argc > 1) {                                                               \
            for (size_t i_ = 0; i_ < n_; i_++)                                        \
                if (strcmp((tests)[i_].name, argv[1]) == 0)                           \
                    return _cmocka_run_group_tests(argv[1], &(tests)[i_], 1, NULL,    \
                                                   NULL);                             \
            fprintf(stderr, "%s: no test case named '%s'\n", argv[0], argv[1]);       \
            return 2;                                                                 \
        }                                                                             \
        return cmocka_run_group_tests(tests, NULL, NULL);                             \
    }

/* Assert that an expression returns the given (negative errno) code. */
#define assert_err(expr, code) assert_int_equal((expr), (code))

/* How long any bounded wait in a test may take before it fails. */
#define WTEST_BOUND_NS (5000ull * 1000 * 1000)

/* Wait, at most WTEST_BOUND_NS, until *counter (an atomic int) reaches n. */
static inline void wtest_wait_for_count(int *counter, int n)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (__atomic_load_n(counter, __ATOMIC_ACQUIRE) < n) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        assert_true((uint64_t)(t.tv_sec - t0.tv_sec) * 1000000000ull + (uint64_t)t.tv_nsec -
                        (uint64_t)t0.tv_nsec < WTEST_BOUND_NS);
        usleep(500);
    }
}

/* cmocka's assertions must not fail outside the test's own thread (they
 * longjmp); helper threads check with this and abort instead. */
#define wtest_thread_check(cond)                                                         \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* Sleep ms milliseconds, resuming after signals. */
static inline void wtest_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Join t, failing the test if it has not ended within `seconds`. */
static inline void wtest_join(pthread_t t, int seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += seconds;
    assert_int_equal(pthread_timedjoin_np(t, NULL, &ts), 0);
}

/* True when thread `tid` of this process is blocked (state 'S' in /proc). */
static inline bool wtest_thread_blocked(uint32_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%u/stat", tid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p != NULL && p[1] == ' ' && p[2] == 'S';
}

/* Run fn in a child process and check that it aborts (SIGABRT) after
 * printing `needle` on stderr: for misuse that weft refuses to survive. */
static inline void wtest_expect_abort(void (*fn)(void), const char *needle)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], STDERR_FILENO);
        close(p[0]);
        fn();
        _exit(0);
    }
    close(p[1]);
    char buf[2048];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read(p[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(p[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
    assert_non_null(strstr(buf, needle));
}

#endif /* WEFT_TESTS_WTEST_H */
