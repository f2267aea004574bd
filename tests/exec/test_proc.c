/* Unit tests for weft_proc_pool_t: results, memfd payloads, crashes, exits,
 * timeouts, recycling, cancel, and a clean shutdown (no zombies, no fds). */
// ctest-timeout 30
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "weft.h"
#include "wtest.h"

#define SEC 1000000000ll

/* ---- task functions (they run in the worker processes) -------------------- */

static int sum_bytes(const void *in, size_t len, void **out, size_t *out_len)
{
    uint64_t s = 0;
    for (size_t i = 0; i < len; i++)
        s += ((const uint8_t *)in)[i];
    uint64_t *r = malloc(sizeof *r);
    *r = s;
    *out = r;
    *out_len = sizeof *r;
    return 0;
}

static int reverse(const void *in, size_t len, void **out, size_t *out_len)
{
    uint8_t *r = malloc(len);
    for (size_t i = 0; i < len; i++)
        r[i] = ((const uint8_t *)in)[len - 1 - i];
    *out = r;
    *out_len = len;
    return 0;
}

/* A real invalid store (not raise()): the sanitizers are told to let the
 * hardware fault happen, so the worker dies of SIGSEGV in every build. */
__attribute__((no_sanitize("address", "undefined"))) static int
segfault(const void *in, size_t len, void **out, size_t *out_len)
{
    (void)in, (void)len, (void)out, (void)out_len;
    volatile int *p = NULL;
    *p = 1;
    return 0;
}

static int exit3(const void *in, size_t len, void **out, size_t *out_len)
{
    (void)in, (void)len, (void)out, (void)out_len;
    exit(3);
}

static int sleepy(const void *in, size_t len, void **out, size_t *out_len)
{
    (void)in, (void)len, (void)out, (void)out_len;
    sleep(20);
    return 0;
}

static int fails_eio(const void *in, size_t len, void **out, size_t *out_len)
{
    (void)in, (void)len, (void)out, (void)out_len;
    return -EIO;
}

static int my_pid(const void *in, size_t len, void **out, size_t *out_len)
{
    (void)in, (void)len;
    pid_t *p = malloc(sizeof *p);
    *p = getpid();
    *out = p;
    *out_len = sizeof *p;
    return 0;
}

/* ---- helpers -------------------------------------------------------------- */

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    if (d != NULL)
        closedir(d);
    return n;
}

static bool no_children(void)
{
    return waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD;
}

static weft_proc_pool_t *make(unsigned workers, int64_t timeout, unsigned max_tasks)
{
    weft_proc_pool_t *p;
    weft_proc_opts_t o = {.name = "procs",
                          .workers = workers,
                          .task_timeout_ns = timeout,
                          .max_tasks_per_worker = max_tasks};
    assert_err(weft_proc_pool_create(&p, &o), 0);
    return p;
}

/* Submit sum_bytes on {i, i+1, i+2} and check the answer. */
static weft_proc_future_t *submit_sum(weft_proc_pool_t *p, uint8_t i)
{
    uint8_t in[3] = {i, (uint8_t)(i + 1), (uint8_t)(i + 2)};
    weft_proc_future_t *f;
    assert_err(weft_proc_submit(p, sum_bytes, in, sizeof in, &f), 0);
    return f;
}

static void check_sum(weft_proc_future_t *f, uint8_t i)
{
    const void *out;
    size_t len;
    assert_err(weft_proc_wait(f, 10 * SEC, &out, &len), 0);
    assert_int_equal(len, 8);
    assert_int_equal(*(const uint64_t *)out, 3u * i + 3);
    weft_proc_release(f);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_invalid(void **state)
{
    (void)state;
    weft_proc_pool_t *p;
    weft_proc_future_t *f;
    assert_err(weft_proc_pool_create(NULL, NULL), -EINVAL);
    weft_proc_opts_t bad = {.task_timeout_ns = -1};
    assert_err(weft_proc_pool_create(&p, &bad), -EINVAL);
    p = make(1, 0, 0);
    assert_err(weft_proc_submit(NULL, sum_bytes, NULL, 0, &f), -EINVAL);
    assert_err(weft_proc_submit(p, NULL, NULL, 0, &f), -EINVAL);
    assert_err(weft_proc_submit(p, sum_bytes, NULL, 0, NULL), -EINVAL);
    assert_err(weft_proc_submit(p, sum_bytes, NULL, 5, &f), -EINVAL);
    assert_err(weft_proc_wait(NULL, 0, NULL, NULL), -EINVAL);
    assert_err(weft_proc_cancel(NULL), -EINVAL);
    assert_err(weft_proc_pool_destroy(NULL), -EINVAL);
    weft_proc_release(NULL);
    assert_err(weft_proc_pool_destroy(p), 0);
}

static void test_results(void **state)
{
    (void)state;
    weft_proc_pool_t *p = make(2, 0, 0);
    weft_proc_future_t *fs[200];
    for (int i = 0; i < 200; i++)
        fs[i] = submit_sum(p, (uint8_t)i);
    for (int i = 0; i < 200; i++)
        check_sum(fs[i], (uint8_t)i);
    weft_proc_stats_t st;
    assert_err(weft_proc_pool_stats(p, &st), 0);
    assert_int_equal(st.submitted, 200);
    assert_int_equal(st.completed, 200);
    assert_int_equal(st.spawned, 2);
    assert_err(weft_proc_pool_destroy(p), 0);
}

/* Many tasks queued at once from several threads: every one completes (a
 * lost manager wake-up would hang here until the 10 s wait gives up). */
static int bulk_errors;

/* Runs in a plain thread: no cmocka asserts here, errors are counted. */
static void *bulk_submitter(void *arg)
{
    weft_proc_pool_t *p = arg;
    static __thread weft_proc_future_t *fs[2000];
    for (int i = 0; i < 2000; i++) {
        uint8_t in[3] = {(uint8_t)i, (uint8_t)(i + 1), (uint8_t)(i + 2)};
        if (weft_proc_submit(p, sum_bytes, in, sizeof in, &fs[i]) != 0)
            fs[i] = NULL;
    }
    for (int i = 0; i < 2000; i++) {
        const void *out = NULL;
        size_t len = 0;
        uint64_t want = (uint8_t)i + (uint8_t)(i + 1) + (uint8_t)(i + 2);
        if (fs[i] == NULL || weft_proc_wait(fs[i], 10 * SEC, &out, &len) != 0 || len != 8 ||
            *(const uint64_t *)out != want)
            __atomic_fetch_add(&bulk_errors, 1, __ATOMIC_RELAXED);
        weft_proc_release(fs[i]);
    }
    return NULL;
}

static void test_bulk_from_threads(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        weft_proc_pool_t *p = make(2, 0, 0);
        pthread_t t[3];
        for (int i = 0; i < 3; i++)
            pthread_create(&t[i], NULL, bulk_submitter, p);
        for (int i = 0; i < 3; i++)
            pthread_join(t[i], NULL);
        assert_int_equal(__atomic_load_n(&bulk_errors, __ATOMIC_RELAXED), 0);
        weft_proc_stats_t st;
        assert_err(weft_proc_pool_stats(p, &st), 0);
        assert_int_equal(st.completed, 6000);
        assert_err(weft_proc_pool_destroy_timed(p, 10 * SEC), 0);
    }
}

/* 4 MiB each way: through memfds, not the socket. */
static void test_large_payload(void **state)
{
    (void)state;
    weft_proc_pool_t *p = make(1, 0, 0);
    size_t n = 4u << 20;
    uint8_t *in = malloc(n);
    for (size_t i = 0; i < n; i++)
        in[i] = (uint8_t)(i * 7 + 1);
    weft_proc_future_t *f;
    assert_err(weft_proc_submit(p, reverse, in, n, &f), 0);
    const uint8_t *out;
    size_t len;
    assert_err(weft_proc_wait(f, 10 * SEC, (const void **)&out, &len), 0);
    assert_int_equal(len, n);
    for (size_t i = 0; i < n; i += 4093)
        assert_int_equal(out[i], in[n - 1 - i]);
    assert_int_equal(out[0], in[n - 1]);
    weft_proc_release(f);
    free(in);
    assert_err(weft_proc_pool_destroy(p), 0);
}

/* A crashing task fails alone; the others complete; the worker is replaced. */
static void check_failure_isolated(weft_proc_fn bad, weft_proc_fail_t kind, int info,
                                   const char *what)
{
    weft_proc_pool_t *p = make(2, 0, 0);
    weft_proc_future_t *fs[40], *fb;
    for (int i = 0; i < 20; i++)
        fs[i] = submit_sum(p, (uint8_t)i);
    assert_err(weft_proc_submit(p, bad, NULL, 0, &fb), 0);
    for (int i = 20; i < 40; i++)
        fs[i] = submit_sum(p, (uint8_t)i);
    assert_err(weft_proc_wait(fb, 10 * SEC, NULL, NULL), -ECHILD);
    weft_proc_failure_t fl;
    assert_err(weft_proc_failure(fb, &fl), 0);
    assert_int_equal(fl.kind, kind);
    assert_int_equal(kind == WEFT_PROC_SIGNALED ? fl.signo : fl.exit_code, info);
    assert_true(fl.pid > 0);
    assert_non_null(strstr(fl.what, what));
    fprintf(stderr, "failure reported: %s\n", fl.what);
    weft_proc_release(fb);
    for (int i = 0; i < 40; i++)
        check_sum(fs[i], (uint8_t)i);
    weft_proc_stats_t st;
    assert_err(weft_proc_pool_stats(p, &st), 0);
    assert_int_equal(st.crashed, 1);
    assert_int_equal(st.spawned, 3);
    assert_err(weft_proc_pool_destroy(p), 0);
    assert_true(no_children());
}

static void test_segfault_isolated(void **state)
{
    (void)state;
    check_failure_isolated(segfault, WEFT_PROC_SIGNALED, SIGSEGV, "signal 11 (SIGSEGV)");
}

static void test_exit_isolated(void **state)
{
    (void)state;
    check_failure_isolated(exit3, WEFT_PROC_EXITED, 3, "exited with status 3");
}

static void test_timeout(void **state)
{
    (void)state;
    weft_proc_pool_t *p = make(2, 200000000, 0);
    weft_proc_future_t *fb, *f1 = submit_sum(p, 1);
    uint64_t t0 = weft_now_ns();
    assert_err(weft_proc_submit(p, sleepy, NULL, 0, &fb), 0);
    weft_proc_future_t *f2 = submit_sum(p, 2);
    assert_err(weft_proc_wait(fb, 10 * SEC, NULL, NULL), -ETIME);
    uint64_t took = weft_now_ns() - t0;
    assert_true(took >= 200000000u && took < 5 * SEC);
    weft_proc_failure_t fl;
    assert_err(weft_proc_failure(fb, &fl), 0);
    assert_int_equal(fl.kind, WEFT_PROC_TIMEDOUT);
    assert_int_equal(fl.signo, SIGKILL);
    weft_proc_release(fb);
    check_sum(f1, 1);
    check_sum(f2, 2);
    check_sum(submit_sum(p, 3), 3); /* the pool carries on */
    weft_proc_stats_t st;
    assert_err(weft_proc_pool_stats(p, &st), 0);
    assert_int_equal(st.timed_out, 1);
    assert_err(weft_proc_pool_destroy(p), 0);
    assert_true(no_children());
}

static void test_task_error(void **state)
{
    (void)state;
    weft_proc_pool_t *p = make(1, 0, 0);
    weft_proc_future_t *f;
    assert_err(weft_proc_submit(p, fails_eio, NULL, 0, &f), 0);
    assert_err(weft_proc_wait(f, 10 * SEC, NULL, NULL), -EIO);
    weft_proc_failure_t fl;
    assert_err(weft_proc_failure(f, &fl), 0);
    assert_int_equal(fl.kind, WEFT_PROC_TASK_ERROR);
    assert_int_equal(fl.err, -EIO);
    weft_proc_release(f);
    assert_err(weft_proc_pool_destroy(p), 0);
}

static void test_recycle(void **state)
{
    (void)state;
    weft_proc_pool_t *p = make(1, 0, 3);
    pid_t pids[10];
    for (int i = 0; i < 10; i++) {
        weft_proc_future_t *f;
        const void *out;
        assert_err(weft_proc_submit(p, my_pid, NULL, 0, &f), 0);
        assert_err(weft_proc_wait(f, 10 * SEC, &out, NULL), 0);
        pids[i] = *(const pid_t *)out;
        weft_proc_release(f);
    }
    for (int i = 0; i < 10; i++)
        assert_int_equal(pids[i] == pids[i / 3 * 3], 1); /* 3 tasks per process */
    assert_int_not_equal(pids[0], pids[3]);
    assert_int_not_equal(pids[3], pids[6]);
    weft_proc_stats_t st;
    assert_err(weft_proc_pool_stats(p, &st), 0);
    assert_int_equal(st.recycled, 3);
    assert_err(weft_proc_pool_destroy(p), 0);
}

static void test_cancel(void **state)
{
    (void)state;
    weft_proc_pool_t *p = make(1, 300000000, 0);
    weft_proc_future_t *fb, *fc;
    assert_err(weft_proc_submit(p, sleepy, NULL, 0, &fb), 0);
    assert_err(weft_proc_submit(p, sum_bytes, NULL, 0, &fc), 0);
    assert_err(weft_proc_cancel(fc), 0);
    assert_err(weft_proc_cancel(fc), 0);
    assert_err(weft_proc_wait(fc, 0, NULL, NULL), -ECANCELED);
    assert_err(weft_proc_wait(fb, 10 * SEC, NULL, NULL), -ETIME);
    assert_err(weft_proc_cancel(fb), -EBUSY);
    weft_proc_release(fb);
    weft_proc_release(fc);
    assert_err(weft_proc_pool_destroy(p), 0);
}

/* Destroy runs the queued tasks, then leaves no child and no descriptor. */
static void test_clean_shutdown(void **state)
{
    (void)state;
    int fds = count_fds();
    weft_proc_pool_t *p = make(3, 0, 2);
    weft_proc_future_t *fs[30], *fb;
    for (int i = 0; i < 30; i++)
        fs[i] = submit_sum(p, (uint8_t)i);
    assert_err(weft_proc_submit(p, segfault, NULL, 0, &fb), 0);
    assert_err(weft_proc_pool_destroy(p), 0);
    for (int i = 0; i < 30; i++)
        check_sum(fs[i], (uint8_t)i);
    assert_err(weft_proc_wait(fb, 0, NULL, NULL), -ECHILD);
    weft_proc_release(fb);
    assert_true(no_children());
    assert_int_equal(count_fds(), fds);
}

static void test_destroy_timed_kills(void **state)
{
    (void)state;
    int fds = count_fds();
    weft_proc_pool_t *p = make(1, 0, 0);
    weft_proc_future_t *fb, *fq;
    assert_err(weft_proc_submit(p, sleepy, NULL, 0, &fb), 0);
    assert_err(weft_proc_submit(p, sum_bytes, NULL, 0, &fq), 0);
    usleep(50000);
    uint64_t t0 = weft_now_ns();
    assert_err(weft_proc_pool_destroy_timed(p, 100000000), 0);
    assert_true(weft_now_ns() - t0 < 3 * SEC);
    assert_err(weft_proc_wait(fb, 0, NULL, NULL), -ECHILD);
    weft_proc_failure_t fl;
    assert_err(weft_proc_failure(fb, &fl), 0);
    assert_int_equal(fl.kind, WEFT_PROC_CANCELLED);
    assert_err(weft_proc_wait(fq, 0, NULL, NULL), -ECANCELED);
    weft_proc_release(fb);
    weft_proc_release(fq);
    assert_true(no_children());
    assert_int_equal(count_fds(), fds);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_invalid),           cmocka_unit_test(test_results),
    cmocka_unit_test(test_large_payload),     cmocka_unit_test(test_bulk_from_threads),
    cmocka_unit_test(test_segfault_isolated), cmocka_unit_test(test_exit_isolated),
    cmocka_unit_test(test_timeout),           cmocka_unit_test(test_task_error),
    cmocka_unit_test(test_recycle),           cmocka_unit_test(test_cancel),
    cmocka_unit_test(test_clean_shutdown),    cmocka_unit_test(test_destroy_timed_kills),
};

WTEST_MAIN(tests)
