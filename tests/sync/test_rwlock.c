/*
 * Unit tests for weft_rwlock_t: every function and error code, sharing and
 * exclusion, writer preference, and a timed-out writer letting the readers
 * it held back in.
 *
 * Helper threads use timed calls or are released by the test, and every
 * wait in the test is bounded, so a bug fails a case instead of hanging it.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "weft.h"
#include "wtest.h"

// ctest-timeout 30

/* These cases misuse the lock on purpose (unlock by non-holders, relocking),
 * which clang's static lock analysis would rightly reject. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wthread-safety-analysis"
#endif

#define MS 1000000LL
#define BOUND_NS (5000 * MS) /* how long any bounded wait in a test may take */

/* Writers registered as waiting, read from the private word (white-box). */
static uint32_t waiting_writers(weft_rwlock_t *rw)
{
    return (uint32_t)(__atomic_load_n(&rw->_state, __ATOMIC_RELAXED) >> 32);
}

static uint32_t waiting_readers(weft_rwlock_t *rw)
{
    return __atomic_load_n(&rw->_rwaiting, __ATOMIC_RELAXED);
}

/* Wait, at most BOUND_NS, until get(rw) >= n. */
static void wait_until(uint32_t (*get)(weft_rwlock_t *), weft_rwlock_t *rw, uint32_t n)
{
    uint64_t end = weft_now_ns() + BOUND_NS;
    while (get(rw) < n) {
        assert_true(weft_now_ns() < end);
        usleep(500);
    }
}

/* A bounded wait usable in helper threads (no cmocka asserts there). */
static int wait_count_bounded(int *counter, int n)
{
    uint64_t end = weft_now_ns() + BOUND_NS;
    while (__atomic_load_n(counter, __ATOMIC_ACQUIRE) < n) {
        if (weft_now_ns() >= end)
            return -ETIMEDOUT;
        usleep(500);
    }
    return 0;
}

/*
 * A helper thread performing one call on the lock: `op` names it. "rd" and
 * "wr" block without limit; "trd"/"twr" are timed; "tryrd"/"trywr" try;
 * "unlock" unlocks. A successful lock is counted in *inside (if set), held
 * until *release becomes non-zero (if set) and until *inside reaches
 * `together` (if non-zero), then released.
 */
struct call {
    weft_rwlock_t *rw;
    const char *op;
    int64_t timeout_ns;
    int together;
    int *release;
    int *inside;
    int *done;
    int result;
};

static int do_call(struct call *c)
{
    if (strcmp(c->op, "rd") == 0) {
        weft_rwlock_rdlock(c->rw);
        return 0;
    }
    if (strcmp(c->op, "wr") == 0) {
        weft_rwlock_wrlock(c->rw);
        return 0;
    }
    if (strcmp(c->op, "trd") == 0)
        return weft_rwlock_timedrdlock(c->rw, c->timeout_ns);
    if (strcmp(c->op, "twr") == 0)
        return weft_rwlock_timedwrlock(c->rw, c->timeout_ns);
    if (strcmp(c->op, "tryrd") == 0)
        return weft_rwlock_tryrdlock(c->rw);
    if (strcmp(c->op, "trywr") == 0)
        return weft_rwlock_trywrlock(c->rw);
    return weft_rwlock_unlock(c->rw);
}

static void *call_main(void *arg)
{
    struct call *c = arg;
    c->result = do_call(c);
    if (c->result == 0 && strcmp(c->op, "unlock") != 0) {
        if (c->inside != NULL)
            __atomic_fetch_add(c->inside, 1, __ATOMIC_ACQ_REL);
        if (c->release != NULL && wait_count_bounded(c->release, 1) != 0)
            c->result = -ETIMEDOUT;
        if (c->together && wait_count_bounded(c->inside, c->together) != 0)
            c->result = -ETIMEDOUT;
        if (weft_rwlock_unlock(c->rw) != 0)
            c->result = -EPERM;
    }
    __atomic_fetch_add(c->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Run one call in another thread and wait for it to finish. */
static int call_in_thread(weft_rwlock_t *rw, const char *op, int64_t timeout_ns)
{
    int done = 0;
    struct call c = {rw, op, timeout_ns, 0, NULL, NULL, &done, -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, call_main, &c), 0);
    wtest_wait_for_count(&done, 1);
    pthread_join(t, NULL);
    return c.result;
}

static void test_init_destroy(void **state)
{
    (void)state;
    weft_rwlock_t rw;
    assert_int_equal(weft_rwlock_init(&rw, "table"), 0);
    assert_string_equal(rw._name, "table");
    assert_int_equal(weft_rwlock_destroy(&rw), 0);
    assert_err(weft_rwlock_init(NULL, "x"), -EINVAL);
    assert_err(weft_rwlock_destroy(NULL), -EINVAL);
}

static void test_static_init(void **state)
{
    (void)state;
    static weft_rwlock_t rw = WEFT_RWLOCK_INIT("static");
    assert_string_equal(rw._name, "static");
    weft_rwlock_wrlock(&rw);
    assert_int_equal(weft_rwlock_unlock(&rw), 0);
    weft_rwlock_rdlock(&rw);
    assert_int_equal(weft_rwlock_unlock(&rw), 0);
    assert_int_equal(weft_rwlock_destroy(&rw), 0);
}

static void test_null_and_bad_timeout(void **state)
{
    (void)state;
    weft_rwlock_t rw;
    assert_int_equal(weft_rwlock_init(&rw, NULL), 0);
    assert_err(weft_rwlock_tryrdlock(NULL), -EINVAL);
    assert_err(weft_rwlock_trywrlock(NULL), -EINVAL);
    assert_err(weft_rwlock_timedrdlock(NULL, 0), -EINVAL);
    assert_err(weft_rwlock_timedwrlock(NULL, 0), -EINVAL);
    assert_err(weft_rwlock_unlock(NULL), -EINVAL);
    assert_err(weft_rwlock_timedrdlock(&rw, -2), -EINVAL);
    assert_err(weft_rwlock_timedwrlock(&rw, INT64_MIN), -EINVAL);
    assert_int_equal(weft_rwlock_timedrdlock(&rw, WEFT_FOREVER), 0);
    assert_int_equal(weft_rwlock_unlock(&rw), 0);
    assert_int_equal(weft_rwlock_timedwrlock(&rw, 0), 0);
    assert_int_equal(weft_rwlock_unlock(&rw), 0);
    assert_int_equal(weft_rwlock_destroy(&rw), 0);
}

static void rdlock_null(void)
{
    weft_rwlock_rdlock(NULL);
}

static void wrlock_null(void)
{
    weft_rwlock_wrlock(NULL);
}

static void test_void_null_aborts(void **state)
{
    (void)state;
    wtest_expect_abort(rdlock_null, "NULL rwlock");
    wtest_expect_abort(wrlock_null, "NULL rwlock");
}

static void test_unlock_not_held(void **state)
{
    (void)state;
    weft_rwlock_t rw;
    assert_int_equal(weft_rwlock_init(&rw, "idle"), 0);
    assert_err(weft_rwlock_unlock(&rw), -EPERM);
    assert_int_equal(weft_rwlock_destroy(&rw), 0);
}

static void test_readers_share(void **state)
{
    (void)state;
    weft_rwlock_t rw;
    assert_int_equal(weft_rwlock_init(&rw, "shared"), 0);
    weft_rwlock_rdlock(&rw);
    assert_int_equal(call_in_thread(&rw, "tryrd", 0), 0);
    assert_int_equal(call_in_thread(&rw, "trd", 10 * MS), 0);
    assert_int_equal(call_in_thread(&rw, "rd", 0), 0);
    assert_err(call_in_thread(&rw, "trywr", 0), -EBUSY);
    uint64_t t0 = weft_now_ns();
    assert_err(call_in_thread(&rw, "twr", 10 * MS), -ETIMEDOUT);
    assert_true(weft_now_ns() - t0 >= 10 * MS);
    assert_int_equal(waiting_writers(&rw), 0); /* the writer deregistered */
    assert_err(weft_rwlock_destroy(&rw), -EBUSY);
    /* A second read hold while no writer waits. */
    assert_int_equal(weft_rwlock_tryrdlock(&rw), 0);
    assert_int_equal(weft_rwlock_unlock(&rw), 0);
    assert_int_equal(weft_rwlock_unlock(&rw), 0);
    assert_err(weft_rwlock_unlock(&rw), -EPERM);
    assert_int_equal(weft_rwlock_destroy(&rw), 0);
}

static void test_writer_excludes(void **state)
{
    (void)state;
    weft_rwlock_t rw;
    assert_int_equal(weft_rwlock_init(&rw, "excl"), 0);
    weft_rwlock_wrlock(&rw);
    assert_err(call_in_thread(&rw, "tryrd", 0), -EBUSY);
    assert_err(call_in_thread(&rw, "trywr", 0), -EBUSY);
    uint64_t t0 = weft_now_ns();
    assert_err(call_in_thread(&rw, "trd", 10 * MS), -ETIMEDOUT);
    assert_err(call_in_thread(&rw, "twr", 10 * MS), -ETIMEDOUT);
    assert_true(weft_now_ns() - t0 >= 20 * MS);
    assert_err(call_in_thread(&rw, "unlock", 0), -EPERM);
    assert_err(weft_rwlock_destroy(&rw), -EBUSY);
    assert_int_equal(weft_rwlock_unlock(&rw), 0);
    assert_err(weft_rwlock_unlock(&rw), -EPERM);
    assert_int_equal(call_in_thread(&rw, "trywr", 0), 0);
    assert_int_equal(weft_rwlock_destroy(&rw), 0);
}

static void test_write_relock_deadlk(void **state)
{
    (void)state;
    weft_rwlock_t rw;
    assert_int_equal(weft_rwlock_init(&rw, "self"), 0);
    weft_rwlock_wrlock(&rw);
    assert_err(weft_rwlock_timedwrlock(&rw, 10 * MS), -EDEADLK);
    assert_err(weft_rwlock_timedwrlock(&rw, WEFT_FOREVER), -EDEADLK);
    assert_err(weft_rwlock_timedwrlock(&rw, 0), -EDEADLK);
    assert_err(weft_rwlock_timedrdlock(&rw, 10 * MS), -EDEADLK);
    assert_err(weft_rwlock_trywrlock(&rw), -EBUSY);
    assert_err(weft_rwlock_tryrdlock(&rw), -EBUSY);
    assert_int_equal(weft_rwlock_unlock(&rw), 0);
    assert_int_equal(weft_rwlock_destroy(&rw), 0);
}

static void wrlock_twice(void)
{
    static weft_rwlock_t rw = WEFT_RWLOCK_INIT("twice");
    weft_rwlock_wrlock(&rw);
    weft_rwlock_wrlock(&rw);
}

static void wrlock_then_rdlock(void)
{
    static weft_rwlock_t rw = WEFT_RWLOCK_INIT("mixed");
    weft_rwlock_wrlock(&rw);
    weft_rwlock_rdlock(&rw);
}

static void test_relock_aborts(void **state)
{
    (void)state;
    wtest_expect_abort(wrlock_twice, "'twice'");
    wtest_expect_abort(wrlock_twice, "already holds for writing");
    wtest_expect_abort(wrlock_then_rdlock, "'mixed'");
}

/* Start a thread running `c`; c->done is bumped when it has finished. */
static pthread_t start(struct call *c)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, call_main, c), 0);
    return t;
}

/* Once a writer waits, new readers wait behind it, even though the lock is
 * only read-held; the writer gets in when the readers already inside leave. */
static void test_writer_preference(void **state)
{
    (void)state;
    weft_rwlock_t rw;
    int done = 0, release = 0, inside = 0;
    assert_int_equal(weft_rwlock_init(&rw, "pref"), 0);
    weft_rwlock_rdlock(&rw);
    struct call w = {&rw, "wr", 0, 0, &release, &inside, &done, -1};
    pthread_t tw = start(&w);
    wait_until(waiting_writers, &rw, 1);
    assert_err(call_in_thread(&rw, "tryrd", 0), -EBUSY);
    assert_err(call_in_thread(&rw, "trd", 10 * MS), -ETIMEDOUT);
    /* A reader that blocks now must come after the writer. */
    int rdone = 0;
    struct call r = {&rw, "trd", 10000 * MS, 0, NULL, &inside, &rdone, -1};
    pthread_t tr = start(&r);
    wait_until(waiting_readers, &rw, 1);
    assert_int_equal(__atomic_load_n(&inside, __ATOMIC_ACQUIRE), 0);
    assert_err(weft_rwlock_destroy(&rw), -EBUSY);
    assert_int_equal(weft_rwlock_unlock(&rw), 0);
    wtest_wait_for_count(&inside, 1); /* the writer, not the reader */
    assert_int_equal(__atomic_load_n(&rdone, __ATOMIC_ACQUIRE), 0);
    assert_err(weft_rwlock_tryrdlock(&rw), -EBUSY);
    __atomic_store_n(&release, 1, __ATOMIC_RELEASE);
    wtest_wait_for_count(&done, 1);
    wtest_wait_for_count(&rdone, 1);
    pthread_join(tw, NULL);
    pthread_join(tr, NULL);
    assert_int_equal(w.result, 0);
    assert_int_equal(r.result, 0);
    assert_int_equal(weft_rwlock_destroy(&rw), 0);
}

/* A writer that gives up must let in the readers that queued behind it,
 * while the lock is still read-held by someone else. */
static void test_timed_writer_releases_readers(void **state)
{
    (void)state;
    weft_rwlock_t rw;
    int wdone = 0, rdone = 0, release = 0;
    assert_int_equal(weft_rwlock_init(&rw, "giveup"), 0);
    weft_rwlock_rdlock(&rw);
    struct call w = {&rw, "twr", 100 * MS, 0, NULL, NULL, &wdone, -1};
    pthread_t tw = start(&w);
    wait_until(waiting_writers, &rw, 1);
    struct call r[2] = {
        {&rw, "rd", 0, 0, &release, NULL, &rdone, -1},
        {&rw, "trd", 10000 * MS, 0, &release, NULL, &rdone, -1},
    };
    pthread_t tr[2] = {start(&r[0]), start(&r[1])};
    wait_until(waiting_readers, &rw, 2);
    wtest_wait_for_count(&wdone, 1);
    assert_err(w.result, -ETIMEDOUT);
    assert_int_equal(waiting_writers(&rw), 0);
    /* Both readers get in while we still hold our read lock. */
    uint64_t end = weft_now_ns() + BOUND_NS;
    while (__atomic_load_n(&rw._state, __ATOMIC_RELAXED) % (1u << 30) != 3) {
        assert_true(weft_now_ns() < end);
        usleep(200);
    }
    __atomic_store_n(&release, 1, __ATOMIC_RELEASE);
    wtest_wait_for_count(&rdone, 2);
    assert_int_equal(weft_rwlock_unlock(&rw), 0);
    pthread_join(tw, NULL);
    pthread_join(tr[0], NULL);
    pthread_join(tr[1], NULL);
    assert_int_equal(r[0].result, 0);
    assert_int_equal(r[1].result, 0);
    assert_int_equal(weft_rwlock_destroy(&rw), 0);
}

/* A write unlock wakes every waiting reader, and they hold the lock together:
 * each waits inside until all three are in. */
static void test_unlock_wakes_all_readers(void **state)
{
    (void)state;
    enum { N = 3 };
    weft_rwlock_t rw;
    int done = 0, inside = 0;
    assert_int_equal(weft_rwlock_init(&rw, "crowd"), 0);
    weft_rwlock_wrlock(&rw);
    struct call r[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        r[i] = (struct call){&rw, i ? "trd" : "rd", 10000 * MS, N, NULL, &inside, &done, -1};
        t[i] = start(&r[i]);
    }
    wait_until(waiting_readers, &rw, N);
    assert_int_equal(weft_rwlock_unlock(&rw), 0);
    wtest_wait_for_count(&inside, N); /* all N inside at once */
    wtest_wait_for_count(&done, N);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].result, 0);
    }
    assert_int_equal(weft_rwlock_destroy(&rw), 0);
}

/* The writer waits for the last reader, not the first. */
static void test_last_reader_wakes_writer(void **state)
{
    (void)state;
    weft_rwlock_t rw;
    int done = 0, inside = 0;
    assert_int_equal(weft_rwlock_init(&rw, "last"), 0);
    weft_rwlock_rdlock(&rw);
    weft_rwlock_rdlock(&rw);
    struct call w = {&rw, "twr", 10000 * MS, 0, NULL, &inside, &done, -1};
    pthread_t tw = start(&w);
    wait_until(waiting_writers, &rw, 1);
    assert_int_equal(weft_rwlock_unlock(&rw), 0);
    usleep(5000);
    assert_int_equal(__atomic_load_n(&inside, __ATOMIC_ACQUIRE), 0);
    assert_int_equal(weft_rwlock_unlock(&rw), 0);
    wtest_wait_for_count(&done, 1);
    pthread_join(tw, NULL);
    assert_int_equal(w.result, 0);
    assert_int_equal(inside, 1);
    assert_int_equal(weft_rwlock_destroy(&rw), 0);
}

/* Writers waiting on a writer are let in one after another. */
static void test_writers_take_turns(void **state)
{
    (void)state;
    enum { N = 3 };
    weft_rwlock_t rw;
    int done = 0, inside = 0;
    assert_int_equal(weft_rwlock_init(&rw, "turns"), 0);
    weft_rwlock_wrlock(&rw);
    struct call w[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        w[i] = (struct call){&rw, i ? "twr" : "wr", 10000 * MS, 0, NULL, &inside, &done, -1};
        t[i] = start(&w[i]);
    }
    wait_until(waiting_writers, &rw, N);
    assert_int_equal(weft_rwlock_unlock(&rw), 0);
    wtest_wait_for_count(&done, N);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].result, 0);
    }
    assert_int_equal(inside, N);
    assert_int_equal(weft_rwlock_destroy(&rw), 0);
}

struct reader_loop {
    weft_rwlock_t *rw;
    int *stop;
    int *inside; /* readers holding the lock now */
};

/* Read-lock, linger (yielding, so that the readers' holds overlap), unlock,
 * until told to stop. */
static void *reader_loop_main(void *arg)
{
    struct reader_loop *r = arg;
    while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE)) {
        weft_rwlock_rdlock(r->rw);
        __atomic_fetch_add(r->inside, 1, __ATOMIC_RELAXED);
        sched_yield();
        __atomic_fetch_sub(r->inside, 1, __ATOMIC_RELAXED);
        weft_rwlock_unlock(r->rw);
    }
    return NULL;
}

/* A stream of overlapping readers, never leaving the lock free, must not
 * keep a writer out: every timed write lock succeeds. */
static void test_writer_not_starved(void **state)
{
    (void)state;
    enum { N = 3 };
    weft_rwlock_t rw;
    int stop = 0, inside = 0;
    assert_int_equal(weft_rwlock_init(&rw, "stream"), 0);
    struct reader_loop r[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        r[i] = (struct reader_loop){&rw, &stop, &inside};
        assert_int_equal(pthread_create(&t[i], NULL, reader_loop_main, &r[i]), 0);
    }
    for (int i = 0; i < 50; i++) {
        assert_int_equal(weft_rwlock_timedwrlock(&rw, 2000 * MS), 0);
        assert_int_equal(__atomic_load_n(&inside, __ATOMIC_RELAXED), 0);
        assert_int_equal(weft_rwlock_unlock(&rw), 0);
        usleep(200);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(weft_rwlock_destroy(&rw), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_init_destroy),
    cmocka_unit_test(test_static_init),
    cmocka_unit_test(test_null_and_bad_timeout),
    cmocka_unit_test(test_void_null_aborts),
    cmocka_unit_test(test_unlock_not_held),
    cmocka_unit_test(test_readers_share),
    cmocka_unit_test(test_writer_excludes),
    cmocka_unit_test(test_write_relock_deadlk),
    cmocka_unit_test(test_relock_aborts),
    cmocka_unit_test(test_writer_preference),
    cmocka_unit_test(test_timed_writer_releases_readers),
    cmocka_unit_test(test_unlock_wakes_all_readers),
    cmocka_unit_test(test_last_reader_wakes_writer),
    cmocka_unit_test(test_writers_take_turns),
    cmocka_unit_test(test_writer_not_starved),
};

WTEST_MAIN(tests)
