/* Unit tests for weft_once: exactly once, recursion, failure and retry, visibility. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "weft.h"
#include "wtest.h"

// ctest-timeout 30

static void wait_blocked(atomic_uint *tidp)
{
    for (int i = 0; i < 5000; i++) {
        uint32_t tid = atomic_load(tidp);
        if (tid != 0 && wtest_thread_blocked(tid))
            return;
        wtest_sleep_ms(1);
    }
    fail_msg("thread never blocked in weft_once");
}

/* ---- simple cases ------------------------------------------------------------ */

static atomic_int plain_calls;

static int count_call(void *arg)
{
    (void)arg;
    atomic_fetch_add(&plain_calls, 1);
    return 0;
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    weft_once_t o = WEFT_ONCE_INIT;
    atomic_store(&plain_calls, 0);
    assert_err(weft_once(NULL, count_call, NULL), -EINVAL);
    assert_err(weft_once(&o, NULL, NULL), -EINVAL);
    assert_false(weft_once_done(NULL));
    assert_false(weft_once_done(&o));
    assert_int_equal(atomic_load(&plain_calls), 0);
}

static void test_runs_once(void **state)
{
    (void)state;
    static weft_once_t o = WEFT_ONCE_INIT;
    weft_once_t other = WEFT_ONCE_INIT;
    atomic_store(&plain_calls, 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(weft_once(&o, count_call, NULL), 0);
    assert_true(weft_once_done(&o));
    assert_int_equal(atomic_load(&plain_calls), 1);
    assert_false(weft_once_done(&other));
    assert_int_equal(weft_once(&other, count_call, NULL), 0);
    assert_int_equal(atomic_load(&plain_calls), 2);
}

/* ---- recursion ---------------------------------------------------------------- */

struct recurse {
    weft_once_t once;
    int inner;
    int calls;
};

static int call_self(void *arg)
{
    struct recurse *r = arg;
    r->calls++;
    r->inner = weft_once(&r->once, call_self, r);
    return 0;
}

static void test_recursion_is_edeadlk(void **state)
{
    (void)state;
    struct recurse r = {WEFT_ONCE_INIT, 1, 0};
    assert_int_equal(weft_once(&r.once, call_self, &r), 0);
    assert_err(r.inner, -EDEADLK);
    assert_int_equal(r.calls, 1);
    assert_true(weft_once_done(&r.once));
}

/* ---- failure and retry -------------------------------------------------------- */

static int fail_calls;

static int fail_first(void *arg)
{
    (void)arg;
    return ++fail_calls == 1 ? -EIO : 0;
}

static void test_failure_then_retry(void **state)
{
    (void)state;
    weft_once_t o = WEFT_ONCE_INIT;
    fail_calls = 0;
    assert_err(weft_once(&o, fail_first, NULL), -EIO);
    assert_false(weft_once_done(&o));
    assert_int_equal(weft_once(&o, fail_first, NULL), 0);
    assert_true(weft_once_done(&o));
    assert_int_equal(weft_once(&o, fail_first, NULL), 0);
    assert_int_equal(fail_calls, 2);
}

/* The first run fails while two threads wait for it: one of them retries,
 * nobody hangs, and fn succeeds exactly once. */
struct herd {
    weft_once_t once;
    atomic_int calls;
    atomic_int successes;
    atomic_uint tid[2];
    atomic_int release_first;
    int result[3];
};

static int slow_fail_first(void *arg)
{
    struct herd *h = arg;
    if (atomic_fetch_add(&h->calls, 1) == 0) {
        while (!atomic_load(&h->release_first))
            wtest_sleep_ms(1);
        return -EAGAIN;
    }
    atomic_fetch_add(&h->successes, 1);
    return 0;
}

struct herd_arg {
    struct herd *h;
    int index;
};

static void *herd_caller(void *arg)
{
    struct herd_arg *a = arg;
    if (a->index > 0)
        atomic_store(&a->h->tid[a->index - 1], weft_thread_id());
    a->h->result[a->index] = weft_once(&a->h->once, slow_fail_first, a->h);
    return NULL;
}

static void test_failure_with_waiters(void **state)
{
    (void)state;
    static struct herd h;
    memset(&h, 0, sizeof h);
    pthread_t t[3];
    struct herd_arg a[3];
    for (int i = 0; i < 3; i++)
        a[i] = (struct herd_arg){&h, i};
    assert_int_equal(pthread_create(&t[0], NULL, herd_caller, &a[0]), 0);
    while (atomic_load(&h.calls) == 0)
        wtest_sleep_ms(1);
    for (int i = 1; i < 3; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, herd_caller, &a[i]), 0);
        wait_blocked(&h.tid[i - 1]);
    }
    atomic_store(&h.release_first, 1);
    for (int i = 0; i < 3; i++)
        wtest_join(t[i], 10);
    assert_err(h.result[0], -EAGAIN);
    assert_int_equal(h.result[1], 0);
    assert_int_equal(h.result[2], 0);
    assert_int_equal(atomic_load(&h.calls), 2);
    assert_int_equal(atomic_load(&h.successes), 1);
    assert_true(weft_once_done(&h.once));
}

/* ---- visibility ---------------------------------------------------------------- */

#define NREADERS 4

struct table {
    weft_once_t once;
    weft_barrier_t start;
    int values[64]; /* written by fn with plain stores */
    atomic_int calls;
    atomic_int bad;
};

static int fill_table(void *arg)
{
    struct table *t = arg;
    atomic_fetch_add(&t->calls, 1);
    for (int i = 0; i < 64; i++)
        t->values[i] = i * i + 1;
    return 0;
}

static void *read_table(void *arg)
{
    struct table *t = arg;
    weft_barrier_wait(&t->start);
    wtest_thread_check(weft_once(&t->once, fill_table, t) == 0);
    for (int i = 0; i < 64; i++)
        if (t->values[i] != i * i + 1)
            atomic_fetch_add(&t->bad, 1);
    return NULL;
}

/* Threads released together all see every write fn made (plain stores;
 * ThreadSanitizer checks the happens-before edge as well). */
static void test_writes_visible(void **state)
{
    (void)state;
    for (int round = 0; round < 50; round++) {
        static struct table t;
        memset(&t, 0, sizeof t);
        t.once = (weft_once_t)WEFT_ONCE_INIT;
        assert_int_equal(weft_barrier_init(&t.start, NREADERS, "start"), 0);
        pthread_t th[NREADERS];
        for (int i = 0; i < NREADERS; i++)
            assert_int_equal(pthread_create(&th[i], NULL, read_table, &t), 0);
        for (int i = 0; i < NREADERS; i++)
            wtest_join(th[i], 10);
        assert_int_equal(atomic_load(&t.calls), 1);
        assert_int_equal(atomic_load(&t.bad), 0);
        assert_int_equal(weft_barrier_destroy(&t.start), 0);
    }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_invalid_arguments),    cmocka_unit_test(test_runs_once),
    cmocka_unit_test(test_recursion_is_edeadlk), cmocka_unit_test(test_failure_then_retry),
    cmocka_unit_test(test_failure_with_waiters), cmocka_unit_test(test_writes_visible),
};

WTEST_MAIN(tests)
