/* Unit tests for the bounded MPMC queue and the SPSC ring. */
#include <pthread.h>
#include <unistd.h>

#include "weft.h"
#include "wtest.h"

// ctest-timeout 30

#define SEC 1000000000LL

static void test_queue_init_args(void **state)
{
    (void)state;
    weft_queue_t q;
    assert_err(weft_queue_init(NULL, 8), -EINVAL);
    assert_err(weft_queue_init(&q, 0), -EINVAL);
    assert_err(weft_queue_init(&q, SIZE_MAX), -EINVAL);
    assert_int_equal(weft_queue_init(&q, 1), 0);
    assert_int_equal(weft_queue_capacity(&q), 2);
    weft_queue_destroy(&q);
    assert_int_equal(weft_queue_init(&q, 1000), 0);
    assert_int_equal(weft_queue_capacity(&q), 1024);
    weft_queue_destroy(&q);
    weft_queue_destroy(NULL);
    void *item;
    assert_err(weft_queue_trypush(NULL, NULL), -EINVAL);
    assert_err(weft_queue_trypop(NULL, &item), -EINVAL);
    assert_err(weft_queue_push(NULL, NULL, 0), -EINVAL);
    assert_err(weft_queue_pop(NULL, &item, 0), -EINVAL);
    assert_int_equal(weft_queue_capacity(NULL), 0);
    assert_int_equal(weft_queue_size(NULL), 0);
}

static void test_queue_fifo_full_empty(void **state)
{
    (void)state;
    weft_queue_t q;
    void *item = (void *)1;
    assert_int_equal(weft_queue_init(&q, 4), 0);
    assert_err(weft_queue_trypop(&q, &item), -EAGAIN);
    assert_err(weft_queue_trypop(&q, NULL), -EINVAL);
    for (int lap = 0; lap < 3; lap++) { /* wrap around the ring */
        for (uintptr_t i = 0; i < 4; i++)
            assert_int_equal(weft_queue_trypush(&q, (void *)i), 0); /* NULL included */
        assert_err(weft_queue_trypush(&q, (void *)9), -EAGAIN);
        assert_int_equal(weft_queue_size(&q), 4);
        for (uintptr_t i = 0; i < 4; i++) {
            assert_int_equal(weft_queue_trypop(&q, &item), 0);
            assert_ptr_equal(item, (void *)i);
        }
        assert_err(weft_queue_trypop(&q, &item), -EAGAIN);
        assert_int_equal(weft_queue_size(&q), 0);
    }
    weft_queue_destroy(&q);
}

static void test_queue_timeouts(void **state)
{
    (void)state;
    weft_queue_t q;
    void *item;
    assert_int_equal(weft_queue_init(&q, 2), 0);
    assert_err(weft_queue_pop(&q, &item, -5), -EINVAL);
    assert_err(weft_queue_pop(&q, &item, 0), -ETIMEDOUT);
    uint64_t t0 = weft_now_ns();
    assert_err(weft_queue_pop(&q, &item, 20 * 1000000), -ETIMEDOUT);
    assert_true(weft_now_ns() - t0 >= 20 * 1000000u);
    assert_int_equal(weft_queue_push(&q, (void *)1, 0), 0);
    assert_int_equal(weft_queue_push(&q, (void *)2, WEFT_FOREVER), 0);
    assert_err(weft_queue_push(&q, (void *)3, 0), -ETIMEDOUT);
    assert_err(weft_queue_push(&q, (void *)3, 20 * 1000000), -ETIMEDOUT);
    assert_int_equal(weft_queue_pop(&q, &item, 0), 0);
    assert_ptr_equal(item, (void *)1);
    weft_queue_destroy(&q);
}

static void *late_pusher(void *arg)
{
    usleep(20000);
    assert_int_equal(weft_queue_push(arg, (void *)42, 5 * SEC), 0);
    return NULL;
}

static void *late_popper(void *arg)
{
    void *item;
    usleep(20000);
    assert_int_equal(weft_queue_pop(arg, &item, 5 * SEC), 0);
    assert_ptr_equal(item, (void *)1);
    return NULL;
}

static void test_queue_pop_waits_for_push(void **state)
{
    (void)state;
    weft_queue_t q;
    pthread_t t;
    void *item = NULL;
    assert_int_equal(weft_queue_init(&q, 2), 0);
    assert_int_equal(pthread_create(&t, NULL, late_pusher, &q), 0);
    assert_int_equal(weft_queue_pop(&q, &item, 5 * SEC), 0);
    assert_ptr_equal(item, (void *)42);
    pthread_join(t, NULL);
    weft_queue_destroy(&q);
}

static void test_queue_push_waits_for_pop(void **state)
{
    (void)state;
    weft_queue_t q;
    pthread_t t;
    assert_int_equal(weft_queue_init(&q, 2), 0);
    assert_int_equal(weft_queue_trypush(&q, (void *)1), 0);
    assert_int_equal(weft_queue_trypush(&q, (void *)2), 0);
    assert_int_equal(pthread_create(&t, NULL, late_popper, &q), 0);
    assert_int_equal(weft_queue_push(&q, (void *)3, 5 * SEC), 0);
    pthread_join(t, NULL);
    assert_int_equal(weft_queue_size(&q), 2);
    weft_queue_destroy(&q);
}

/* Blocking hand-off through a two-cell queue: every call parks often. */
enum { PP_THREADS = 3, PP_ITEMS = 3000 };
static weft_queue_t pp_q;
static uint64_t pp_sum;

static void *pp_producer(void *arg)
{
    uintptr_t base = (uintptr_t)arg * PP_ITEMS;
    for (uintptr_t i = 1; i <= PP_ITEMS; i++)
        assert_int_equal(weft_queue_push(&pp_q, (void *)(base + i), 10 * SEC), 0);
    return NULL;
}

static void *pp_consumer(void *arg)
{
    (void)arg;
    void *item;
    for (int i = 0; i < PP_ITEMS; i++) {
        assert_int_equal(weft_queue_pop(&pp_q, &item, 10 * SEC), 0);
        __atomic_fetch_add(&pp_sum, (uintptr_t)item, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void test_queue_blocking_handoff(void **state)
{
    (void)state;
    pthread_t p[PP_THREADS], c[PP_THREADS];
    assert_int_equal(weft_queue_init(&pp_q, 2), 0);
    for (uintptr_t i = 0; i < PP_THREADS; i++) {
        assert_int_equal(pthread_create(&p[i], NULL, pp_producer, (void *)i), 0);
        assert_int_equal(pthread_create(&c[i], NULL, pp_consumer, NULL), 0);
    }
    for (int i = 0; i < PP_THREADS; i++) {
        pthread_join(p[i], NULL);
        pthread_join(c[i], NULL);
    }
    uint64_t n = (uint64_t)PP_THREADS * PP_ITEMS;
    assert_int_equal(pp_sum, n * (n + 1) / 2);
    assert_int_equal(weft_queue_size(&pp_q), 0);
    weft_queue_destroy(&pp_q);
}

static void test_ring_basics(void **state)
{
    (void)state;
    weft_ring_t r;
    void *item;
    assert_err(weft_ring_init(NULL, 4), -EINVAL);
    assert_err(weft_ring_init(&r, 0), -EINVAL);
    assert_err(weft_ring_push_spsc(NULL, NULL), -EINVAL);
    assert_err(weft_ring_pop_spsc(NULL, &item), -EINVAL);
    assert_int_equal(weft_ring_init(&r, 3), 0);
    assert_int_equal(weft_ring_capacity(&r), 4);
    assert_err(weft_ring_pop_spsc(&r, NULL), -EINVAL);
    for (int lap = 0; lap < 3; lap++) {
        for (uintptr_t i = 0; i < 4; i++)
            assert_int_equal(weft_ring_push_spsc(&r, (void *)i), 0);
        assert_err(weft_ring_push_spsc(&r, NULL), -EAGAIN);
        assert_int_equal(weft_ring_size(&r), 4);
        for (uintptr_t i = 0; i < 4; i++) {
            assert_int_equal(weft_ring_pop_spsc(&r, &item), 0);
            assert_ptr_equal(item, (void *)i);
        }
        assert_err(weft_ring_pop_spsc(&r, &item), -EAGAIN);
    }
    weft_ring_destroy(&r);
    weft_ring_destroy(NULL);
}

static void test_ring_batches(void **state)
{
    (void)state;
    weft_ring_t r;
    void *in[6] = {(void *)1, (void *)2, (void *)3, (void *)4, (void *)5, (void *)6};
    void *out[6] = {0};
    assert_int_equal(weft_ring_init(&r, 4), 0);
    assert_int_equal(weft_ring_push_many_spsc(&r, in, 6), 4);
    assert_int_equal(weft_ring_pop_many_spsc(&r, out, 3), 3);
    assert_int_equal(weft_ring_push_many_spsc(&r, in + 4, 2), 2);
    assert_int_equal(weft_ring_pop_many_spsc(&r, out + 3, 6), 3);
    void *want[6] = {(void *)1, (void *)2, (void *)3, (void *)4, (void *)5, (void *)6};
    assert_memory_equal(out, want, sizeof want);
    assert_int_equal(weft_ring_pop_many_spsc(&r, out, 6), 0);
    assert_int_equal(weft_ring_push_many_spsc(NULL, in, 1), 0);
    weft_ring_destroy(&r);
}

enum { RING_ITEMS = 200000 };

static void *ring_producer(void *arg)
{
    for (uintptr_t i = 1; i <= RING_ITEMS; i++)
        while (weft_ring_push_spsc(arg, (void *)i) != 0)
            sched_yield();
    return NULL;
}

static void test_ring_two_threads_in_order(void **state)
{
    (void)state;
    weft_ring_t r;
    pthread_t t;
    assert_int_equal(weft_ring_init(&r, 64), 0);
    assert_int_equal(pthread_create(&t, NULL, ring_producer, &r), 0);
    uintptr_t want = 1;
    uint64_t deadline = weft_now_ns() + 20 * (uint64_t)SEC;
    while (want <= RING_ITEMS && weft_now_ns() < deadline) {
        void *item;
        if (weft_ring_pop_spsc(&r, &item) != 0) {
            sched_yield();
            continue;
        }
        assert_ptr_equal(item, (void *)want);
        want++;
    }
    assert_int_equal(want, RING_ITEMS + 1);
    pthread_join(t, NULL);
    weft_ring_destroy(&r);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_queue_init_args),
    cmocka_unit_test(test_queue_fifo_full_empty),
    cmocka_unit_test(test_queue_timeouts),
    cmocka_unit_test(test_queue_pop_waits_for_push),
    cmocka_unit_test(test_queue_push_waits_for_pop),
    cmocka_unit_test(test_queue_blocking_handoff),
    cmocka_unit_test(test_ring_basics),
    cmocka_unit_test(test_ring_batches),
    cmocka_unit_test(test_ring_two_threads_in_order),
};

WTEST_MAIN(tests)
