/*
 * Unit tests for weft_sem_t: every function, every error code, blocking and
 * waking, and the race between a timeout and a release.
 *
 * Blocking calls in helper threads are timed or are released by the test
 * itself, and every wait in the test is bounded, so a bug fails a case
 * instead of hanging it (CTest's timeout is the last resort).
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "weft.h"
#include "wtest.h"

// ctest-timeout 30

#define MS 1000000LL
#define BOUND_NS (5000 * MS) /* how long any bounded wait in a test may take */

/* Registered waiters, read from the private word (white-box). */
static uint32_t sem_waiters(weft_sem_t *s)
{
    return (uint32_t)(__atomic_load_n(&s->_data, __ATOMIC_RELAXED) >> 32);
}

/* Wait, at most BOUND_NS, until at least n threads wait on s. */
static void wait_for_waiters(weft_sem_t *s, uint32_t n)
{
    uint64_t end = weft_now_ns() + BOUND_NS;
    while (sem_waiters(s) < n) {
        assert_true(weft_now_ns() < end);
        usleep(500);
    }
}

static void test_init_destroy(void **state)
{
    (void)state;
    weft_sem_t s;
    assert_int_equal(weft_sem_init(&s, 3, "pool"), 0);
    assert_int_equal(weft_sem_available(&s), 3);
    assert_string_equal(s._name, "pool");
    assert_int_equal(weft_sem_destroy(&s), 0);
    assert_int_equal(weft_sem_init(&s, WEFT_SEM_MAX, NULL), 0);
    assert_int_equal(weft_sem_available(&s), WEFT_SEM_MAX);
    assert_int_equal(weft_sem_destroy(&s), 0);
    assert_err(weft_sem_init(&s, WEFT_SEM_MAX + 1u, NULL), -EINVAL);
    assert_err(weft_sem_init(NULL, 1, NULL), -EINVAL);
    assert_err(weft_sem_destroy(NULL), -EINVAL);
}

static void test_static_init(void **state)
{
    (void)state;
    static weft_sem_t s = WEFT_SEM_INIT(2, "static");
    assert_string_equal(s._name, "static");
    assert_int_equal(weft_sem_available(&s), 2);
    assert_int_equal(weft_sem_tryacquire(&s), 0);
    assert_int_equal(weft_sem_tryacquire(&s), 0);
    assert_err(weft_sem_tryacquire(&s), -EAGAIN);
    assert_int_equal(weft_sem_release(&s), 0);
    weft_sem_acquire(&s);
    assert_int_equal(weft_sem_release(&s), 0);
    assert_int_equal(weft_sem_release(&s), 0);
    assert_int_equal(weft_sem_available(&s), 2);
    assert_int_equal(weft_sem_destroy(&s), 0);
}

static void test_tryacquire(void **state)
{
    (void)state;
    weft_sem_t s;
    assert_int_equal(weft_sem_init(&s, 1, "try"), 0);
    assert_int_equal(weft_sem_tryacquire(&s), 0);
    assert_err(weft_sem_tryacquire(&s), -EAGAIN);
    assert_int_equal(weft_sem_available(&s), 0);
    assert_err(weft_sem_tryacquire(NULL), -EINVAL);
    assert_int_equal(weft_sem_release(&s), 0);
    assert_int_equal(weft_sem_available(&s), 1);
    assert_int_equal(weft_sem_destroy(&s), 0);
}

static void test_timedacquire_errors(void **state)
{
    (void)state;
    weft_sem_t s;
    assert_int_equal(weft_sem_init(&s, 1, "timed"), 0);
    assert_err(weft_sem_timedacquire(NULL, 0), -EINVAL);
    assert_err(weft_sem_timedacquire(&s, -2), -EINVAL);
    assert_err(weft_sem_timedacquire(&s, INT64_MIN), -EINVAL);
    assert_int_equal(weft_sem_available(&s), 1);
    assert_int_equal(weft_sem_timedacquire(&s, 0), 0);
    assert_err(weft_sem_timedacquire(&s, 0), -ETIMEDOUT);
    assert_int_equal(weft_sem_release(&s), 0);
    assert_int_equal(weft_sem_timedacquire(&s, WEFT_FOREVER), 0);
    assert_int_equal(weft_sem_release(&s), 0);
    assert_int_equal(weft_sem_timedacquire(&s, INT64_MAX), 0);
    assert_int_equal(weft_sem_destroy(&s), 0);
}

static void test_timedacquire_times_out(void **state)
{
    (void)state;
    weft_sem_t s;
    assert_int_equal(weft_sem_init(&s, 0, "empty"), 0);
    uint64_t t0 = weft_now_ns();
    assert_err(weft_sem_timedacquire(&s, 20 * MS), -ETIMEDOUT);
    uint64_t dt = weft_now_ns() - t0;
    assert_true(dt >= 20 * MS);
    assert_true(dt < BOUND_NS);
    /* The waiter left: nothing is registered, no permit was made up. */
    assert_int_equal(sem_waiters(&s), 0);
    assert_int_equal(weft_sem_available(&s), 0);
    assert_int_equal(weft_sem_destroy(&s), 0);
}

static void test_release_overflow(void **state)
{
    (void)state;
    weft_sem_t s;
    assert_int_equal(weft_sem_init(&s, WEFT_SEM_MAX - 1, "full"), 0);
    assert_int_equal(weft_sem_release(&s), 0);
    assert_err(weft_sem_release(&s), -EOVERFLOW);
    assert_int_equal(weft_sem_available(&s), WEFT_SEM_MAX);
    assert_int_equal(weft_sem_tryacquire(&s), 0);
    assert_int_equal(weft_sem_release(&s), 0);
    assert_err(weft_sem_release(NULL), -EINVAL);
    assert_int_equal(weft_sem_destroy(&s), 0);
}

static void test_available_null(void **state)
{
    (void)state;
    assert_int_equal(weft_sem_available(NULL), 0);
}

struct waiter {
    weft_sem_t *sem;
    int64_t timeout_ns; /* WEFT_FOREVER: use weft_sem_acquire */
    int result;
    int *done; /* incremented when the call returns */
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    if (w->timeout_ns == WEFT_FOREVER) {
        weft_sem_acquire(w->sem);
        w->result = 0;
    } else {
        w->result = weft_sem_timedacquire(w->sem, w->timeout_ns);
    }
    __atomic_fetch_add(w->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void test_acquire_blocks_until_release(void **state)
{
    (void)state;
    weft_sem_t s;
    int done = 0;
    assert_int_equal(weft_sem_init(&s, 0, "gate"), 0);
    struct waiter w = {&s, WEFT_FOREVER, -1, &done};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, waiter_main, &w), 0);
    wait_for_waiters(&s, 1);
    assert_int_equal(__atomic_load_n(&done, __ATOMIC_ACQUIRE), 0);
    assert_int_equal(weft_sem_release(&s), 0);
    wtest_wait_for_count(&done, 1);
    pthread_join(t, NULL);
    assert_int_equal(w.result, 0);
    assert_int_equal(weft_sem_available(&s), 0);
    assert_int_equal(sem_waiters(&s), 0);
    assert_int_equal(weft_sem_destroy(&s), 0);
}

static void test_destroy_busy_while_waiting(void **state)
{
    (void)state;
    weft_sem_t s;
    int done = 0;
    assert_int_equal(weft_sem_init(&s, 0, "busy"), 0);
    struct waiter w = {&s, 10000 * MS, -1, &done};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, waiter_main, &w), 0);
    wait_for_waiters(&s, 1);
    assert_err(weft_sem_destroy(&s), -EBUSY);
    assert_int_equal(weft_sem_release(&s), 0);
    wtest_wait_for_count(&done, 1);
    pthread_join(t, NULL);
    assert_int_equal(w.result, 0);
    assert_int_equal(weft_sem_destroy(&s), 0);
}

/* Several sleepers, as many releases: each release wakes one, all get in. */
static void test_release_wakes_every_waiter(void **state)
{
    (void)state;
    enum { N = 4 };
    weft_sem_t s;
    int done = 0;
    assert_int_equal(weft_sem_init(&s, 0, "many"), 0);
    struct waiter w[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        w[i] = (struct waiter){&s, i % 2 ? WEFT_FOREVER : 10000 * MS, -1, &done};
        assert_int_equal(pthread_create(&t[i], NULL, waiter_main, &w[i]), 0);
    }
    wait_for_waiters(&s, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(weft_sem_release(&s), 0);
    wtest_wait_for_count(&done, N);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].result, 0);
    }
    assert_int_equal(weft_sem_available(&s), 0);
    assert_int_equal(weft_sem_destroy(&s), 0);
}

/*
 * A waiter whose deadline passes just as a permit is released must not take
 * the wake-up with it: round after round, a short-timeout waiter A and a
 * patient waiter B race one release. Every permit must end up taken.
 */
static void test_timeout_keeps_wakeup(void **state)
{
    (void)state;
    for (int round = 0; round < 40; round++) {
        weft_sem_t s;
        int done = 0;
        assert_int_equal(weft_sem_init(&s, 0, "race"), 0);
        struct waiter a = {&s, (round % 4) * MS / 2, -1, &done};
        struct waiter b = {&s, 10000 * MS, -1, &done};
        pthread_t ta, tb;
        assert_int_equal(pthread_create(&ta, NULL, waiter_main, &a), 0);
        assert_int_equal(pthread_create(&tb, NULL, waiter_main, &b), 0);
        usleep((useconds_t)(round % 3) * 500);
        assert_int_equal(weft_sem_release(&s), 0);
        pthread_join(ta, NULL);
        if (a.result == 0)
            assert_int_equal(weft_sem_release(&s), 0); /* B's permit */
        else
            assert_err(a.result, -ETIMEDOUT);
        wtest_wait_for_count(&done, 2);
        pthread_join(tb, NULL);
        assert_int_equal(b.result, 0);
        assert_int_equal(weft_sem_available(&s), 0);
        assert_int_equal(weft_sem_destroy(&s), 0);
    }
}

static void acquire_null(void)
{
    weft_sem_acquire(NULL);
}

static void test_acquire_null_aborts(void **state)
{
    (void)state;
    wtest_expect_abort(acquire_null, "NULL semaphore");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_init_destroy),
    cmocka_unit_test(test_static_init),
    cmocka_unit_test(test_tryacquire),
    cmocka_unit_test(test_timedacquire_errors),
    cmocka_unit_test(test_timedacquire_times_out),
    cmocka_unit_test(test_release_overflow),
    cmocka_unit_test(test_available_null),
    cmocka_unit_test(test_acquire_blocks_until_release),
    cmocka_unit_test(test_destroy_busy_while_waiting),
    cmocka_unit_test(test_release_wakes_every_waiter),
    cmocka_unit_test(test_timeout_keeps_wakeup),
    cmocka_unit_test(test_acquire_null_aborts),
};

WTEST_MAIN(tests)
