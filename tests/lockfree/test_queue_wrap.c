/*
 * The MPMC queue at the edges of its position arithmetic: positions that
 * wrap around size_t (and cross the signed boundary), and capacities too
 * large to represent. weft__queue_init_at() starts a queue a few items
 * before the point under test, so each case crosses it within a few laps.
 */
#include <pthread.h>

#include "lockfree/internal.h"
#include "weft.h"
#include "wtest.h"

// ctest-timeout 30

#define SEC 1000000000LL

/* First positions, in items, a few items short of the queue's byte
 * positions (16 per item) wrapping to 0, and of their crossing
 * SIZE_MAX / 2, where a signed difference of two positions overflows. */
#define NEAR_WRAP ((SIZE_MAX >> 4) - 6)
#define NEAR_HALF ((SIZE_MAX >> 5) - 6)

static void test_queue_capacity_limits(void **state)
{
    (void)state;
    weft_queue_t q;
    /* Rings whose size in bytes does not fit: refused before allocating
     * (an overflowing size would allocate a tiny buffer and overrun it). */
    assert_err(weft_queue_init(&q, (size_t)1 << 59), -ENOMEM);
    assert_err(weft_queue_init(&q, ((size_t)1 << 60) + 1), -ENOMEM);
    assert_err(weft_queue_init(&q, (size_t)1 << 62), -ENOMEM);
    assert_err(weft_queue_init(&q, ((size_t)1 << 62) + 1), -EINVAL);
    assert_err(weft__queue_init_at(NULL, 4, 0), -EINVAL);
    assert_err(weft__queue_init_at(&q, 0, 0), -EINVAL);
}

/* Fills and drains a 4-slot queue for `laps` laps from position `first`,
 * checking order, fullness, emptiness and size on every step. */
static void fill_drain_laps(size_t first, int laps)
{
    weft_queue_t q;
    void *item;
    uintptr_t next_in = 1, next_out = 1;
    assert_int_equal(weft__queue_init_at(&q, 4, first), 0);
    assert_int_equal(weft_queue_capacity(&q), 4);
    for (int lap = 0; lap < laps; lap++) {
        for (size_t i = 0; i < 4; i++) {
            assert_int_equal(weft_queue_size(&q), i);
            assert_int_equal(weft_queue_trypush(&q, (void *)next_in++), 0);
        }
        assert_err(weft_queue_trypush(&q, (void *)99), -EAGAIN);
        assert_err(weft_queue_push(&q, (void *)99, 0), -ETIMEDOUT);
        assert_int_equal(weft_queue_size(&q), 4);
        for (size_t i = 0; i < 4; i++) {
            item = NULL;
            assert_int_equal(lap % 2 ? weft_queue_pop(&q, &item, 0) : weft_queue_trypop(&q, &item),
                             0);
            assert_ptr_equal(item, (void *)next_out++);
        }
        assert_err(weft_queue_trypop(&q, &item), -EAGAIN);
        assert_err(weft_queue_pop(&q, &item, 1000), -ETIMEDOUT);
        assert_int_equal(weft_queue_size(&q), 0);
        /* Shift the phase by one item, so the wrap falls at every offset
         * within a lap over the laps. */
        assert_int_equal(weft_queue_trypush(&q, (void *)next_in++), 0);
        assert_int_equal(weft_queue_trypop(&q, &item), 0);
        assert_ptr_equal(item, (void *)next_out++);
    }
    weft_queue_destroy(&q);
}

static void test_queue_positions_wrap_to_zero(void **state)
{
    (void)state;
    fill_drain_laps(NEAR_WRAP, 6);
}

static void test_queue_positions_cross_half(void **state)
{
    (void)state;
    fill_drain_laps(NEAR_HALF, 6);
}

#define HANDOFF_ITEMS 20000

static void *wrap_producer(void *arg)
{
    for (uintptr_t i = 1; i <= HANDOFF_ITEMS; i++)
        wtest_thread_check(weft_queue_push(arg, (void *)i, 5 * SEC) == 0);
    return NULL;
}

/* Blocking calls, parking on both sides, across the wrap: a 2-slot queue
 * between two threads. Every item arrives, in order. */
static void test_queue_blocking_across_wrap(void **state)
{
    (void)state;
    weft_queue_t q;
    pthread_t t;
    assert_int_equal(weft__queue_init_at(&q, 2, NEAR_WRAP - HANDOFF_ITEMS / 2), 0);
    assert_int_equal(pthread_create(&t, NULL, wrap_producer, &q), 0);
    for (uintptr_t i = 1; i <= HANDOFF_ITEMS; i++) {
        void *item = NULL;
        assert_int_equal(weft_queue_pop(&q, &item, 5 * SEC), 0);
        assert_ptr_equal(item, (void *)i);
    }
    wtest_join(t, 10);
    assert_int_equal(weft_queue_size(&q), 0);
    weft_queue_destroy(&q);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_queue_capacity_limits),
    cmocka_unit_test(test_queue_positions_wrap_to_zero),
    cmocka_unit_test(test_queue_positions_cross_half),
    cmocka_unit_test(test_queue_blocking_across_wrap),
};

WTEST_MAIN(tests)
