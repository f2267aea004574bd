/* Unit tests for the base layer: errors, clock, thread ids, CPU count. */
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal/base.h"
#include "weft.h"
#include "wtest.h"

static void test_strerror_names_codes(void **state)
{
    (void)state;
    assert_string_equal(weft_strerror(0), "success");
    assert_non_null(strstr(weft_strerror(-EDEADLK), "EDEADLK"));
    assert_non_null(strstr(weft_strerror(-EBUSY), "EBUSY"));
    assert_non_null(strstr(weft_strerror(-ETIMEDOUT), "ETIMEDOUT"));
    assert_non_null(strstr(weft_strerror(-EPERM), "EPERM"));
    assert_non_null(strstr(weft_strerror(-EINVAL), "EINVAL"));
    assert_non_null(strstr(weft_strerror(-EOVERFLOW), "EOVERFLOW"));
    assert_non_null(weft_strerror(-ENOTDIR)); /* falls back to libc's table */
    assert_string_equal(weft_strerror(-99999), "unknown error");
}

static void test_clock_monotonic(void **state)
{
    (void)state;
    uint64_t a = weft_now_ns();
    usleep(2000);
    uint64_t b = weft_now_ns();
    assert_true(b > a);
    assert_true(b - a >= 2000000u);
}

static void *tid_thread(void *arg)
{
    *(uint32_t *)arg = weft_thread_id();
    return NULL;
}

static void test_thread_ids_differ(void **state)
{
    (void)state;
    uint32_t other = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, tid_thread, &other), 0);
    pthread_join(t, NULL);
    assert_int_not_equal(other, 0);
    assert_int_not_equal(other, weft_thread_id());
    assert_int_equal(weft_thread_id(), (uint32_t)gettid());
}

static void test_tid_reset_after_fork(void **state)
{
    (void)state;
    uint32_t parent = weft_thread_id();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(weft_thread_id() == (uint32_t)getpid() && weft_thread_id() != parent ? 0 : 1);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_cpu_count(void **state)
{
    (void)state;
    assert_true(weft_cpu_count() >= 1);
}

static void test_deadline(void **state)
{
    (void)state;
    weft__deadline_t d;
    assert_int_equal(weft__deadline_init(&d, -2), -EINVAL);
    assert_int_equal(weft__deadline_init(&d, WEFT_FOREVER), 0);
    assert_false(weft__deadline_passed(&d));
    assert_int_equal(weft__deadline_init(&d, 0), 0);
    assert_true(weft__deadline_passed(&d));
    assert_int_equal(weft__deadline_init(&d, INT64_MAX), 0);
    assert_false(weft__deadline_passed(&d));
    uint32_t word = 7;
    assert_int_equal(weft__deadline_init(&d, 1000000), 0);
    assert_int_equal(weft__futex_wait(&word, 7, &d), -ETIMEDOUT);
    assert_int_equal(weft__futex_wait(&word, 8, &d), -EAGAIN);
}

static void test_version(void **state)
{
    (void)state;
    assert_string_equal(weft_version(), WEFT_VERSION_STRING);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_strerror_names_codes), cmocka_unit_test(test_clock_monotonic),
    cmocka_unit_test(test_thread_ids_differ),    cmocka_unit_test(test_tid_reset_after_fork),
    cmocka_unit_test(test_cpu_count),            cmocka_unit_test(test_deadline),
    cmocka_unit_test(test_version),
};

WTEST_MAIN(tests)
