/*
 * Unit tests for weft_backoff_t: bounds, growth and cap, reset, jitter range,
 * seeding. The length of each pause is read from the private `_last` field,
 * which exists for this purpose; the bound from `_bound`.
 */
#include <stdbool.h>
#include <stdlib.h>

#include "weft.h"
#include "wtest.h"

// ctest-timeout 30

static void test_null_arguments(void **state)
{
    (void)state;
    weft_backoff_init(NULL, 1);
    weft_backoff_pause(NULL);
    weft_backoff_reset(NULL);
    assert_int_equal(weft_backoff_failures(NULL), 0);
    assert_err(weft_backoff_set_limits(NULL, 1, 2), -EINVAL);
}

static void test_bad_limits(void **state)
{
    (void)state;
    weft_backoff_t b;
    weft_backoff_init(&b, 7);
    assert_err(weft_backoff_set_limits(&b, 0, 10), -EINVAL);
    assert_err(weft_backoff_set_limits(&b, 10, 5), -EINVAL);
    assert_int_equal(weft_backoff_set_limits(&b, 5, 5), 0);
    assert_int_equal(weft_backoff_set_limits(&b, 1, UINT32_MAX), 0);
}

static void test_defaults(void **state)
{
    (void)state;
    weft_backoff_t b;
    weft_backoff_init(&b, 42);
    assert_int_equal(weft_backoff_failures(&b), 0);
    assert_int_equal(b._bound, 4);
    for (int i = 0; i < 20; i++)
        weft_backoff_pause(&b);
    assert_int_equal(b._bound, 65536);
    assert_int_equal(weft_backoff_failures(&b), 20);
}

/* The bound doubles after every pause and stops at the cap; every pause
 * stays within the bound in force when it was drawn. */
static void test_bound_grows_and_caps(void **state)
{
    (void)state;
    weft_backoff_t b;
    weft_backoff_init(&b, 3);
    assert_int_equal(weft_backoff_set_limits(&b, 3, 40), 0);
    const uint32_t want[] = {6, 12, 24, 40, 40, 40};
    uint32_t bound = 3;
    for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++) {
        weft_backoff_pause(&b);
        assert_true(b._last <= bound);
        assert_int_equal(b._bound, want[i]);
        assert_int_equal(weft_backoff_failures(&b), i + 1);
        bound = want[i];
    }
}

static void test_reset(void **state)
{
    (void)state;
    weft_backoff_t b;
    weft_backoff_init(&b, 9);
    assert_int_equal(weft_backoff_set_limits(&b, 2, 1000), 0);
    for (int i = 0; i < 5; i++)
        weft_backoff_pause(&b);
    assert_int_equal(weft_backoff_failures(&b), 5);
    assert_int_equal(b._bound, 64);
    weft_backoff_reset(&b);
    assert_int_equal(weft_backoff_failures(&b), 0);
    assert_int_equal(b._bound, 2);
    weft_backoff_pause(&b);
    assert_true(b._last <= 2);
    assert_int_equal(b._bound, 4);
    /* set_limits resets too. */
    assert_int_equal(weft_backoff_set_limits(&b, 8, 16), 0);
    assert_int_equal(weft_backoff_failures(&b), 0);
    assert_int_equal(b._bound, 8);
}

/* Full jitter: draws cover [0, bound], never leave it, and are not stuck at
 * one end. */
static void test_jitter_within_bound(void **state)
{
    (void)state;
    weft_backoff_t b;
    weft_backoff_init(&b, 12345);
    assert_int_equal(weft_backoff_set_limits(&b, 1000, 1000), 0);
    uint32_t lo = UINT32_MAX, hi = 0;
    unsigned below_half = 0;
    for (int i = 0; i < 2000; i++) {
        weft_backoff_pause(&b);
        assert_true(b._last <= 1000);
        lo = b._last < lo ? b._last : lo;
        hi = b._last > hi ? b._last : hi;
        below_half += b._last < 500;
    }
    assert_true(lo < 50);
    assert_true(hi > 950);
    assert_true(below_half > 800 && below_half < 1200);
    /* A bound of 1 can still pick 0 or 1; both must occur. */
    assert_int_equal(weft_backoff_set_limits(&b, 1, 1), 0);
    bool seen[2] = {false, false};
    for (int i = 0; i < 200; i++) {
        weft_backoff_pause(&b);
        assert_true(b._last <= 1);
        seen[b._last] = true;
    }
    assert_true(seen[0] && seen[1]);
}

static void draw_sequence(uint64_t seed, uint32_t out[32])
{
    weft_backoff_t b;
    weft_backoff_init(&b, seed);
    assert_int_equal(weft_backoff_set_limits(&b, 1000, 1000), 0);
    for (int i = 0; i < 32; i++) {
        weft_backoff_pause(&b);
        out[i] = b._last;
    }
}

static void test_seeds(void **state)
{
    (void)state;
    uint32_t a[32], a2[32], c[32], z1[32], z2[32];
    draw_sequence(1, a);
    draw_sequence(1, a2);
    draw_sequence(2, c);
    assert_memory_equal(a, a2, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    /* Seed 0 picks a seed from the clock: two such objects differ. */
    draw_sequence(0, z1);
    draw_sequence(0, z2);
    assert_memory_not_equal(z1, z2, sizeof z1);
}

/* Long pauses yield instead of spinning; they still end. */
static void test_long_pause_completes(void **state)
{
    (void)state;
    weft_backoff_t b;
    weft_backoff_init(&b, 5);
    assert_int_equal(weft_backoff_set_limits(&b, 1u << 20, 1u << 20), 0);
    for (int i = 0; i < 4; i++)
        weft_backoff_pause(&b);
    assert_int_equal(weft_backoff_failures(&b), 4);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_null_arguments), cmocka_unit_test(test_bad_limits),
    cmocka_unit_test(test_defaults),       cmocka_unit_test(test_bound_grows_and_caps),
    cmocka_unit_test(test_reset),          cmocka_unit_test(test_jitter_within_bound),
    cmocka_unit_test(test_seeds),          cmocka_unit_test(test_long_pause_completes),
};

WTEST_MAIN(tests)
