/* Unit tests for the atomic counters and the counting CAS loop. */
#include <pthread.h>

#include "weft.h"
#include "wtest.h"

// ctest-timeout 30

enum { THREADS = 4, ITERS = 20000 };
static weft_counter_t counter = WEFT_COUNTER_INIT;
static weft_cas_stats_t stats = WEFT_CAS_STATS_INIT;
static uint64_t word;

static void test_counter_basics(void **state)
{
    (void)state;
    weft_counter_t c = WEFT_COUNTER_INIT;
    assert_int_equal(weft_counter_load(&c), 0);
    assert_int_equal(weft_counter_add(&c, 5), 5);
    assert_int_equal(weft_counter_add(&c, -7), -2);
    weft_counter_store(&c, 40);
    assert_int_equal(weft_counter_add_cas(&c, 2, NULL), 42);
    assert_int_equal(weft_counter_load(&c), 42);
}

static void *adder(void *arg)
{
    (void)arg;
    for (int i = 0; i < ITERS; i++)
        weft_counter_add_cas(&counter, 1, &stats);
    return NULL;
}

static void test_counter_cas_counts_every_success(void **state)
{
    (void)state;
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, adder, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    uint64_t ok = 0, retries = UINT64_MAX;
    weft_cas_stats_read(&stats, &ok, &retries, true);
    assert_int_equal(weft_counter_load(&counter), THREADS * ITERS);
    assert_int_equal(ok, THREADS * ITERS);
    assert_true(retries != UINT64_MAX); /* any count is honest; it was written */
    weft_cas_stats_read(&stats, &ok, &retries, false);
    assert_int_equal(ok, 0);
    assert_int_equal(retries, 0);
}

/* Keeps the maximum and the count of updates in one word. */
static uint64_t bump_max(uint64_t old, void *arg)
{
    uint64_t v = (uintptr_t)arg;
    uint64_t hi = old >> 32, lo = old & 0xffffffffu;
    return ((hi > v ? hi : v) << 32) | (lo + 1);
}

static void *maxer(void *arg)
{
    for (uintptr_t i = 0; i < ITERS; i++)
        weft_cas_update(&word, bump_max, (void *)(i * THREADS + (uintptr_t)arg), NULL, &stats);
    return NULL;
}

static void test_cas_update(void **state)
{
    (void)state;
    uint64_t old = 7;
    assert_err(weft_cas_update(NULL, bump_max, NULL, NULL, NULL), -EINVAL);
    assert_err(weft_cas_update(&word, NULL, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(weft_cas_update(&word, bump_max, (void *)3, &old, NULL), 0);
    assert_int_equal(old, 0);
    assert_int_equal(word, (3ull << 32) | 1);
    word = 0;
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, maxer, (void *)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(word >> 32, (uint64_t)(ITERS - 1) * THREADS + THREADS - 1);
    assert_int_equal(word & 0xffffffffu, THREADS * ITERS);
    uint64_t ok;
    weft_cas_stats_read(&stats, &ok, NULL, false);
    assert_int_equal(ok, THREADS * ITERS);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_counter_basics),
    cmocka_unit_test(test_counter_cas_counts_every_success),
    cmocka_unit_test(test_cas_update),
};

WTEST_MAIN(tests)
