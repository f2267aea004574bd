/* The wait-for walk through weft's rwlock, fair lock and semaphore: with
 * checking on, their waits sleep in slices, and the lock protocols must
 * survive that (FIFO order kept, no wake-up lost, a waiter told -EDEADLK
 * leaves cleanly); the walk must name the right cycles. The tests invert
 * lock orders on purpose: ThreadSanitizer's own deadlock detector is
 * switched off for them. */
// ctest-env TSAN_OPTIONS=detect_deadlocks=0
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "weft.h"
#include "wtest.h"

/* The tests take locks conditionally (a timed lock that may fail) and keep
 * them across helper calls, which clang's static analysis cannot follow;
 * the locks are checked at run time. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wthread-safety-analysis"
#endif

#define NWAITERS 4
#define LONG_NS 30000000000ll /* far beyond any test's bound */

static char title[160];
static atomic_int reports;

static void reporter(const weft_check_report_t *r, void *arg)
{
    (void)arg;
    if (strcmp(r->kind, "deadlock") == 0)
        snprintf(title, sizeof title, "%s", r->title);
    atomic_fetch_add(&reports, 1);
}

static void checking_on(void)
{
    assert_int_equal(weft_check_enable(), 0);
    assert_int_equal(weft_check_set_reporter(reporter, NULL), 0);
}

/* Wait (at most 5 s) until the thread whose tid is in *tidp sleeps. */
static void wait_blocked(atomic_uint *tidp)
{
    for (int i = 0; i < 5000; i++) {
        uint32_t tid = atomic_load(tidp);
        if (tid != 0 && wtest_thread_blocked(tid)) {
            wtest_sleep_ms(2);
            if (wtest_thread_blocked(tid))
                return;
        }
        wtest_sleep_ms(1);
    }
    fail_msg("thread never blocked");
}

/* ---- fair lock -------------------------------------------------------------- */

struct fifo {
    weft_fairlock_t lock;
    atomic_uint tid[NWAITERS];
    int order[NWAITERS]; /* protected by lock */
    int next;            /* protected by lock */
};

struct fifo_arg {
    struct fifo *f;
    int index;
};

static void *fifo_waiter(void *arg)
{
    struct fifo_arg *a = arg;
    atomic_store(&a->f->tid[a->index], weft_thread_id());
    weft_fairlock_lock(&a->f->lock);
    a->f->order[a->f->next++] = a->index;
    wtest_thread_check(weft_fairlock_unlock(&a->f->lock) == 0);
    return NULL;
}

/* Queued waiters wake every slice for the walk, yet keep their places. */
static void test_fairlock_fifo_across_slices(void **state)
{
    (void)state;
    checking_on();
    static struct fifo f;
    assert_int_equal(weft_fairlock_init(&f.lock, "fifo"), 0);
    pthread_t t[NWAITERS];
    struct fifo_arg a[NWAITERS];
    weft_fairlock_lock(&f.lock);
    for (int i = 0; i < NWAITERS; i++) {
        a[i] = (struct fifo_arg){&f, i};
        assert_int_equal(pthread_create(&t[i], NULL, fifo_waiter, &a[i]), 0);
        wait_blocked(&f.tid[i]);
    }
    wtest_sleep_ms(200); /* four slices for every waiter */
    assert_int_equal(weft_fairlock_unlock(&f.lock), 0);
    for (int i = 0; i < NWAITERS; i++)
        wtest_join(t[i], 10);
    assert_int_equal(f.next, NWAITERS);
    for (int i = 0; i < NWAITERS; i++)
        assert_int_equal(f.order[i], i);
    assert_int_equal(weft_fairlock_destroy(&f.lock), 0);
    assert_int_equal(atomic_load(&reports), 0);
}

/* Two fair locks in opposite orders, both timed: one side is told
 * -EDEADLK and leaves the queue, the other then gets its lock. */
static weft_fairlock_t FA = WEFT_FAIRLOCK_INIT("fa");
static weft_fairlock_t FB = WEFT_FAIRLOCK_INIT("fb");
static pthread_barrier_t bar;

static void *fair_ab(void *x)
{
    (void)x;
    weft_fairlock_lock(&FA);
    pthread_barrier_wait(&bar);
    int r = weft_fairlock_timedlock(&FB, LONG_NS);
    if (r == 0)
        wtest_thread_check(weft_fairlock_unlock(&FB) == 0);
    wtest_thread_check(weft_fairlock_unlock(&FA) == 0);
    return (void *)(intptr_t)r;
}

static void test_fairlock_deadlock_leaves_queue(void **state)
{
    (void)state;
    checking_on();
    pthread_barrier_init(&bar, NULL, 2);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fair_ab, NULL), 0);
    weft_fairlock_lock(&FB);
    pthread_barrier_wait(&bar);
    int r = weft_fairlock_timedlock(&FA, LONG_NS);
    if (r == 0)
        assert_int_equal(weft_fairlock_unlock(&FA), 0);
    assert_int_equal(weft_fairlock_unlock(&FB), 0);
    void *rt;
    assert_int_equal(pthread_join(t, &rt), 0);
    assert_true(r == -EDEADLK || (intptr_t)rt == -EDEADLK);
    assert_true(r == 0 || (intptr_t)rt == 0); /* the survivor got its lock */
    assert_non_null(strstr(title, "cycle"));
    assert_int_equal(weft_fairlock_destroy(&FA), 0);
    assert_int_equal(weft_fairlock_destroy(&FB), 0);
}

/* ---- rwlock ------------------------------------------------------------------ */

static weft_rwlock_t RW = WEFT_RWLOCK_INIT("rw");
static atomic_uint wtid, rtid[2];
static atomic_int entered;

static void *rw_writer(void *x)
{
    atomic_store(&wtid, weft_thread_id());
    weft_rwlock_wrlock(&RW);
    atomic_fetch_add(&entered, 1);
    wtest_thread_check(weft_rwlock_unlock(&RW) == 0);
    return x;
}

static void *rw_reader(void *x)
{
    atomic_store(&rtid[(intptr_t)x], weft_thread_id());
    weft_rwlock_rdlock(&RW);
    atomic_fetch_add(&entered, 1);
    wtest_thread_check(weft_rwlock_unlock(&RW) == 0);
    return NULL;
}

/* A writer and two readers queued behind it sleep through several slices;
 * when the first reader leaves, every one of them gets in. */
static void test_rwlock_wakeups_across_slices(void **state)
{
    (void)state;
    checking_on();
    pthread_t w, r[2];
    weft_rwlock_rdlock(&RW);
    assert_int_equal(pthread_create(&w, NULL, rw_writer, NULL), 0);
    wait_blocked(&wtid);
    for (intptr_t i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&r[i], NULL, rw_reader, (void *)i), 0);
        wait_blocked(&rtid[i]);
    }
    wtest_sleep_ms(200);
    assert_int_equal(atomic_load(&entered), 0);
    assert_int_equal(weft_rwlock_unlock(&RW), 0);
    wtest_join(w, 10);
    for (int i = 0; i < 2; i++)
        wtest_join(r[i], 10);
    assert_int_equal(atomic_load(&entered), 3);
    assert_int_equal(weft_rwlock_destroy(&RW), 0);
    assert_int_equal(atomic_load(&reports), 0);
}

/* A reader holds the lock and waits for a mutex; the writer that holds the
 * mutex waits for the reader. One of them is told -EDEADLK; if it is the
 * writer, it leaves the waiting writers and readers get in again. */
static weft_mutex_t MX = WEFT_MUTEX_INIT("mx");

static void *rw_reader_then_mutex(void *x)
{
    (void)x;
    weft_rwlock_rdlock(&RW);
    pthread_barrier_wait(&bar);
    int r = weft_mutex_timedlock(&MX, LONG_NS);
    if (r == 0)
        wtest_thread_check(weft_mutex_unlock(&MX) == 0);
    wtest_thread_check(weft_rwlock_unlock(&RW) == 0);
    return (void *)(intptr_t)r;
}

static void test_rwlock_writer_blocked_by_reader(void **state)
{
    (void)state;
    checking_on();
    pthread_barrier_init(&bar, NULL, 2);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, rw_reader_then_mutex, NULL), 0);
    weft_mutex_lock(&MX);
    pthread_barrier_wait(&bar);
    int r = weft_rwlock_timedwrlock(&RW, LONG_NS);
    if (r == -EDEADLK) {
        /* No writer waits any more: a new reader may join the holder. */
        assert_int_equal(weft_rwlock_tryrdlock(&RW), 0);
        assert_int_equal(weft_rwlock_unlock(&RW), 0);
    } else {
        assert_int_equal(r, 0);
        assert_int_equal(weft_rwlock_unlock(&RW), 0);
    }
    assert_int_equal(weft_mutex_unlock(&MX), 0);
    void *rt;
    assert_int_equal(pthread_join(t, &rt), 0);
    assert_true(r == -EDEADLK || (intptr_t)rt == -EDEADLK);
    assert_non_null(strstr(title, "cycle"));
    assert_int_equal(weft_rwlock_destroy(&RW), 0);
}

/* Write-locking a lock one holds shared waits for oneself. */
static void test_rwlock_upgrade_is_deadlock(void **state)
{
    (void)state;
    checking_on();
    weft_rwlock_rdlock(&RW);
    assert_err(weft_rwlock_timedwrlock(&RW, LONG_NS), -EDEADLK);
    assert_non_null(strstr(title, "holds shared"));
    /* The failed writer left: readers are not held back. */
    assert_int_equal(weft_rwlock_tryrdlock(&RW), 0);
    assert_int_equal(weft_rwlock_unlock(&RW), 0);
    assert_int_equal(weft_rwlock_unlock(&RW), 0);
    assert_int_equal(weft_rwlock_destroy(&RW), 0);
}

/* ---- semaphore --------------------------------------------------------------- */

static weft_sem_t S1 = WEFT_SEM_INIT(1, "s1");
static weft_sem_t S2 = WEFT_SEM_INIT(1, "s2");

static void *sem_12(void *x)
{
    (void)x;
    weft_sem_acquire(&S1);
    pthread_barrier_wait(&bar);
    int r = weft_sem_timedacquire(&S2, LONG_NS);
    if (r == 0)
        wtest_thread_check(weft_sem_release(&S2) == 0);
    wtest_thread_check(weft_sem_release(&S1) == 0);
    return (void *)(intptr_t)r;
}

/* One permit each, opposite orders: -EDEADLK for one side, which leaves
 * the waiters (destroy finds none) and gives nothing away. */
static void test_sem_deadlock_deregisters(void **state)
{
    (void)state;
    checking_on();
    pthread_barrier_init(&bar, NULL, 2);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, sem_12, NULL), 0);
    weft_sem_acquire(&S2);
    pthread_barrier_wait(&bar);
    int r = weft_sem_timedacquire(&S1, LONG_NS);
    if (r == 0)
        assert_int_equal(weft_sem_release(&S1), 0);
    assert_int_equal(weft_sem_release(&S2), 0);
    void *rt;
    assert_int_equal(pthread_join(t, &rt), 0);
    assert_true(r == -EDEADLK || (intptr_t)rt == -EDEADLK);
    assert_non_null(strstr(title, "cycle"));
    assert_int_equal(weft_sem_available(&S1), 1);
    assert_int_equal(weft_sem_available(&S2), 1);
    assert_int_equal(weft_sem_destroy(&S1), 0);
    assert_int_equal(weft_sem_destroy(&S2), 0);
}

/* Holding every permit and asking for one more waits for oneself. */
static void test_sem_self_deadlock(void **state)
{
    (void)state;
    checking_on();
    weft_sem_t s;
    assert_int_equal(weft_sem_init(&s, 2, "pair"), 0);
    weft_sem_acquire(&s);
    weft_sem_acquire(&s);
    assert_err(weft_sem_timedacquire(&s, LONG_NS), -EDEADLK);
    assert_non_null(strstr(title, "every permit"));
    assert_int_equal(weft_sem_release(&s), 0);
    assert_int_equal(weft_sem_release(&s), 0);
    assert_int_equal(weft_sem_destroy(&s), 0);
}

static atomic_uint stid;

static void *sem_waiter(void *x)
{
    atomic_store(&stid, weft_thread_id());
    weft_sem_acquire(x);
    return NULL;
}

/* A semaphore used as a signal: the waiter sleeps through slices (nobody
 * holds a permit: no cycle) and the release still reaches it. */
static void test_sem_signal_across_slices(void **state)
{
    (void)state;
    checking_on();
    weft_sem_t s;
    assert_int_equal(weft_sem_init(&s, 0, "signal"), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, sem_waiter, &s), 0);
    wait_blocked(&stid);
    wtest_sleep_ms(200);
    assert_int_equal(weft_sem_release(&s), 0);
    wtest_join(t, 10);
    assert_int_equal(weft_sem_destroy(&s), 0);
    assert_int_equal(atomic_load(&reports), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_fairlock_fifo_across_slices),
    cmocka_unit_test(test_fairlock_deadlock_leaves_queue),
    cmocka_unit_test(test_rwlock_wakeups_across_slices),
    cmocka_unit_test(test_rwlock_writer_blocked_by_reader),
    cmocka_unit_test(test_rwlock_upgrade_is_deadlock),
    cmocka_unit_test(test_sem_deadlock_deregisters),
    cmocka_unit_test(test_sem_self_deadlock),
    cmocka_unit_test(test_sem_signal_across_slices),
};

WTEST_MAIN(tests)
