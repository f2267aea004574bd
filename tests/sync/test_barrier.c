/* Unit tests for weft_barrier_t: errors, one serial thread per cycle, reuse, busy destroy. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "weft.h"
#include "wtest.h"

// ctest-timeout 30

#define NTHREADS 4
#define NCYCLES 500

static void test_invalid_arguments(void **state)
{
    (void)state;
    weft_barrier_t b;
    assert_err(weft_barrier_init(NULL, 2, "x"), -EINVAL);
    assert_err(weft_barrier_init(&b, 0, "x"), -EINVAL);
    assert_err(weft_barrier_init(&b, 0x80000000u, "x"), -EINVAL);
    assert_err(weft_barrier_destroy(NULL), -EINVAL);
    assert_err(weft_barrier_wait(NULL), -EINVAL);
    assert_int_equal(weft_barrier_init(&b, 3, NULL), 0);
    assert_int_equal(weft_barrier_destroy(&b), 0);
}

static void test_single_party(void **state)
{
    (void)state;
    weft_barrier_t b;
    assert_int_equal(weft_barrier_init(&b, 1, "one"), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(weft_barrier_wait(&b), WEFT_BARRIER_SERIAL);
    assert_int_equal(weft_barrier_destroy(&b), 0);
}

/* ---- cycles ---------------------------------------------------------------------- */

struct cycles {
    weft_barrier_t barrier;
    atomic_int arrived[NCYCLES];
    atomic_int serial[NCYCLES];
    int data[NCYCLES][NTHREADS]; /* plain: written before, read after the barrier */
};

struct cycles_arg {
    struct cycles *c;
    int index;
};

/* Each cycle: count our arrival and write our slot, wait, then check that
 * everyone arrived and wrote before anyone left. */
static void *run_cycles(void *arg)
{
    struct cycles_arg *a = arg;
    struct cycles *c = a->c;
    for (int k = 0; k < NCYCLES; k++) {
        atomic_fetch_add(&c->arrived[k], 1);
        c->data[k][a->index] = k + a->index;
        int r = weft_barrier_wait(&c->barrier);
        wtest_thread_check(r == 0 || r == WEFT_BARRIER_SERIAL);
        if (r == WEFT_BARRIER_SERIAL)
            atomic_fetch_add(&c->serial[k], 1);
        wtest_thread_check(atomic_load(&c->arrived[k]) == NTHREADS);
        for (int i = 0; i < NTHREADS; i++)
            wtest_thread_check(c->data[k][i] == k + i);
    }
    return NULL;
}

static void test_serial_once_per_cycle(void **state)
{
    (void)state;
    static struct cycles c;
    memset(&c, 0, sizeof c);
    assert_int_equal(weft_barrier_init(&c.barrier, NTHREADS, "cycles"), 0);
    pthread_t t[NTHREADS];
    struct cycles_arg a[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        a[i] = (struct cycles_arg){&c, i};
        assert_int_equal(pthread_create(&t[i], NULL, run_cycles, &a[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        wtest_join(t[i], 20);
    for (int k = 0; k < NCYCLES; k++)
        assert_int_equal(atomic_load(&c.serial[k]), 1);
    assert_int_equal(weft_barrier_destroy(&c.barrier), 0);
}

/* ---- destroy --------------------------------------------------------------------- */

struct waiter {
    weft_barrier_t *b;
    atomic_int returned;
    int result;
};

static void *wait_once(void *arg)
{
    struct waiter *w = arg;
    w->result = weft_barrier_wait(w->b);
    atomic_store(&w->returned, 1);
    return NULL;
}

static void test_destroy_busy_while_waiting(void **state)
{
    (void)state;
    weft_barrier_t b;
    assert_int_equal(weft_barrier_init(&b, 2, "busy"), 0);
    struct waiter w = {&b, 0, -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wait_once, &w), 0);
    int busy = 0;
    for (int i = 0; i < 5000 && busy == 0; i++) {
        busy = weft_barrier_destroy(&b) == -EBUSY;
        if (!busy)
            wtest_sleep_ms(1);
    }
    assert_true(busy);
    assert_int_equal(atomic_load(&w.returned), 0);
    int mine = weft_barrier_wait(&b);
    wtest_join(t, 20);
    /* Exactly one of the two is the serial thread. */
    assert_int_equal(mine + w.result, WEFT_BARRIER_SERIAL);
    assert_int_equal(weft_barrier_destroy(&b), 0);
}

/* Destroy right after our own wait returns, as the serial thread, while
 * the others may still be leaving: destroy lets them out first. */
static void test_destroy_after_last_cycle(void **state)
{
    (void)state;
    for (int round = 0; round < 100; round++) {
        weft_barrier_t *b = malloc(sizeof *b);
        assert_non_null(b);
        assert_int_equal(weft_barrier_init(b, 3, "free"), 0);
        struct waiter w[2] = {{b, 0, -1}, {b, 0, -1}};
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_create(&t[i], NULL, wait_once, &w[i]), 0);
        (void)weft_barrier_wait(b);
        assert_int_equal(weft_barrier_destroy(b), 0);
        memset(b, 0xff, sizeof *b);
        free(b);
        for (int i = 0; i < 2; i++)
            wtest_join(t[i], 20);
    }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_invalid_arguments),
    cmocka_unit_test(test_single_party),
    cmocka_unit_test(test_serial_once_per_cycle),
    cmocka_unit_test(test_destroy_busy_while_waiting),
    cmocka_unit_test(test_destroy_after_last_cycle),
};

WTEST_MAIN(tests)
