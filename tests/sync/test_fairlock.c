/* Unit tests for weft_fairlock_t: errors, FIFO hand-off, no barging, timeouts. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "weft.h"

/* These tests break the locking rules on purpose (unlock by a non-owner,
 * relock, conditional locking through wrappers), which clang's static
 * thread-safety analysis rightly rejects; the lock is checked at run time. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wthread-safety-analysis"
#endif
#include "wtest.h"

// ctest-timeout 30

#define NWAITERS 5

/* ---- helpers --------------------------------------------------------------- */

/* Wait (at most 5 s) until the thread that published its tid in *tidp is
 * blocked inside the lock call. */
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
    fail_msg("thread never blocked in the lock");
}

/* Join with a deadline so a bug fails the test instead of hanging it. */
/* ---- argument checks ------------------------------------------------------- */

static void test_invalid_arguments(void **state)
{
    (void)state;
    weft_fairlock_t l;
    assert_err(weft_fairlock_init(NULL, "x"), -EINVAL);
    assert_err(weft_fairlock_destroy(NULL), -EINVAL);
    assert_err(weft_fairlock_trylock(NULL), -EINVAL);
    assert_err(weft_fairlock_timedlock(NULL, 0), -EINVAL);
    assert_err(weft_fairlock_unlock(NULL), -EINVAL);
    assert_false(weft_fairlock_held(NULL));
    assert_int_equal(weft_fairlock_init(&l, "x"), 0);
    assert_err(weft_fairlock_timedlock(&l, -2), -EINVAL);
    assert_err(weft_fairlock_timedlock(&l, INT64_MIN), -EINVAL);
    assert_false(weft_fairlock_held(&l));
    assert_int_equal(weft_fairlock_destroy(&l), 0);
}

static void test_static_initialiser(void **state)
{
    (void)state;
    static weft_fairlock_t l = WEFT_FAIRLOCK_INIT("static");
    weft_fairlock_lock(&l);
    assert_true(weft_fairlock_held(&l));
    assert_int_equal(weft_fairlock_unlock(&l), 0);
    assert_int_equal(weft_fairlock_trylock(&l), 0);
    assert_int_equal(weft_fairlock_unlock(&l), 0);
    assert_int_equal(weft_fairlock_destroy(&l), 0);
}

static void test_uncontended(void **state)
{
    (void)state;
    weft_fairlock_t l;
    assert_int_equal(weft_fairlock_init(&l, NULL), 0);
    weft_fairlock_lock(&l);
    assert_true(weft_fairlock_held(&l));
    assert_err(weft_fairlock_trylock(&l), -EBUSY);
    assert_err(weft_fairlock_timedlock(&l, 1000000), -EDEADLK);
    assert_err(weft_fairlock_timedlock(&l, WEFT_FOREVER), -EDEADLK);
    assert_err(weft_fairlock_destroy(&l), -EBUSY);
    assert_int_equal(weft_fairlock_unlock(&l), 0);
    assert_false(weft_fairlock_held(&l));
    assert_int_equal(weft_fairlock_timedlock(&l, 0), 0);
    assert_int_equal(weft_fairlock_unlock(&l), 0);
    assert_int_equal(weft_fairlock_timedlock(&l, WEFT_FOREVER), 0);
    assert_int_equal(weft_fairlock_unlock(&l), 0);
    assert_int_equal(weft_fairlock_destroy(&l), 0);
}

/* ---- ownership -------------------------------------------------------------- */

struct holder {
    weft_fairlock_t *l;
    atomic_int stage; /* 1: holding; 2: may release */
};

static void *hold_until_told(void *arg)
{
    struct holder *h = arg;
    weft_fairlock_lock(h->l);
    atomic_store(&h->stage, 1);
    while (atomic_load(&h->stage) != 2)
        wtest_sleep_ms(1);
    wtest_thread_check(weft_fairlock_unlock(h->l) == 0);
    return NULL;
}

static void test_unlock_by_non_owner(void **state)
{
    (void)state;
    weft_fairlock_t l;
    assert_int_equal(weft_fairlock_init(&l, "eperm"), 0);
    assert_err(weft_fairlock_unlock(&l), -EPERM);
    struct holder h = {&l, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, hold_until_told, &h), 0);
    while (atomic_load(&h.stage) != 1)
        wtest_sleep_ms(1);
    assert_err(weft_fairlock_unlock(&l), -EPERM);
    assert_false(weft_fairlock_held(&l));
    assert_err(weft_fairlock_trylock(&l), -EBUSY);
    assert_err(weft_fairlock_timedlock(&l, 0), -ETIMEDOUT);
    assert_err(weft_fairlock_timedlock(&l, 5000000), -ETIMEDOUT);
    assert_err(weft_fairlock_destroy(&l), -EBUSY);
    atomic_store(&h.stage, 2);
    wtest_join(t, 10);
    assert_int_equal(weft_fairlock_destroy(&l), 0);
}

static void child_relocks(void)
{
    weft_fairlock_t l = WEFT_FAIRLOCK_INIT("relock");
    weft_fairlock_lock(&l);
    weft_fairlock_lock(&l); /* must abort */
    _exit(0);
}

static void test_self_relock_aborts(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        dup2(fds[1], STDERR_FILENO);
        child_relocks();
    }
    close(fds[1]);
    char buf[512] = {0};
    ssize_t n = 0, r;
    while ((r = read(fds[0], buf + n, sizeof buf - 1 - (size_t)n)) > 0)
        n += r;
    close(fds[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
    assert_non_null(strstr(buf, "deadlock"));
    assert_non_null(strstr(buf, "relock"));
}

/* ---- FIFO order ------------------------------------------------------------ */

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
    struct fifo *f = a->f;
    atomic_store(&f->tid[a->index], weft_thread_id());
    weft_fairlock_lock(&f->lock);
    f->order[f->next++] = a->index;
    wtest_thread_check(weft_fairlock_unlock(&f->lock) == 0);
    return NULL;
}

/* Waiters queued one by one while the lock is held get it in that order. */
static void test_fifo_order(void **state)
{
    (void)state;
    static struct fifo f;
    memset(&f, 0, sizeof f);
    assert_int_equal(weft_fairlock_init(&f.lock, "fifo"), 0);
    pthread_t t[NWAITERS];
    struct fifo_arg a[NWAITERS];
    weft_fairlock_lock(&f.lock);
    for (int i = 0; i < NWAITERS; i++) {
        a[i] = (struct fifo_arg){&f, i};
        assert_int_equal(pthread_create(&t[i], NULL, fifo_waiter, &a[i]), 0);
        wait_blocked(&f.tid[i]);
    }
    assert_err(weft_fairlock_destroy(&f.lock), -EBUSY);
    assert_int_equal(weft_fairlock_unlock(&f.lock), 0);
    for (int i = 0; i < NWAITERS; i++)
        wtest_join(t[i], 10);
    weft_fairlock_lock(&f.lock);
    assert_int_equal(f.next, NWAITERS);
    for (int i = 0; i < NWAITERS; i++)
        assert_int_equal(f.order[i], i);
    assert_int_equal(weft_fairlock_unlock(&f.lock), 0);
    assert_int_equal(weft_fairlock_destroy(&f.lock), 0);
}

struct sticky {
    weft_fairlock_t lock;
    atomic_uint tid;
    atomic_int release; /* set by the test: the waiter may unlock */
};

static void *sticky_waiter(void *arg)
{
    struct sticky *s = arg;
    atomic_store(&s->tid, weft_thread_id());
    weft_fairlock_lock(&s->lock);
    while (!atomic_load(&s->release))
        wtest_sleep_ms(1);
    wtest_thread_check(weft_fairlock_unlock(&s->lock) == 0);
    return NULL;
}

/* Unlock hands the lock to the queued thread: a trylock right after the
 * unlock must fail even though the waiter may not have run yet (it keeps
 * the lock until told, so the outcome does not depend on timing). */
static void test_trylock_does_not_barge(void **state)
{
    (void)state;
    static struct sticky s;
    memset(&s, 0, sizeof s);
    assert_int_equal(weft_fairlock_init(&s.lock, "nobarge"), 0);
    weft_fairlock_lock(&s.lock);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, sticky_waiter, &s), 0);
    wait_blocked(&s.tid);
    assert_int_equal(weft_fairlock_unlock(&s.lock), 0);
    int r = weft_fairlock_trylock(&s.lock);
    if (r == 0)
        (void)weft_fairlock_unlock(&s.lock);
    assert_err(r, -EBUSY);
    assert_err(weft_fairlock_timedlock(&s.lock, 0), -ETIMEDOUT);
    assert_err(weft_fairlock_destroy(&s.lock), -EBUSY);
    atomic_store(&s.release, 1);
    wtest_join(t, 10);
    assert_int_equal(weft_fairlock_trylock(&s.lock), 0);
    assert_int_equal(weft_fairlock_unlock(&s.lock), 0);
    assert_int_equal(weft_fairlock_destroy(&s.lock), 0);
}

/* ---- timeouts --------------------------------------------------------------- */

struct timed {
    weft_fairlock_t *l;
    int64_t timeout;
    atomic_uint tid;
    int result;
};

static void *timed_waiter(void *arg)
{
    struct timed *w = arg;
    atomic_store(&w->tid, weft_thread_id());
    w->result = weft_fairlock_timedlock(w->l, w->timeout);
    if (w->result == 0)
        wtest_thread_check(weft_fairlock_unlock(w->l) == 0);
    return NULL;
}

/* A waiter that times out in the middle of the queue leaves it; the one
 * behind it still gets the lock, and the lock works afterwards. */
static void test_timeout_leaves_queue(void **state)
{
    (void)state;
    weft_fairlock_t l;
    assert_int_equal(weft_fairlock_init(&l, "timeout"), 0);
    struct timed first = {&l, 100 * 1000000LL, 0, 1};
    struct timed second = {&l, WEFT_FOREVER, 0, 1};
    pthread_t t1, t2;
    weft_fairlock_lock(&l);
    assert_int_equal(pthread_create(&t1, NULL, timed_waiter, &first), 0);
    wait_blocked(&first.tid);
    assert_int_equal(pthread_create(&t2, NULL, timed_waiter, &second), 0);
    wait_blocked(&second.tid);
    wtest_join(t1, 10);
    assert_err(first.result, -ETIMEDOUT);
    assert_int_equal(weft_fairlock_unlock(&l), 0);
    wtest_join(t2, 10);
    assert_int_equal(second.result, 0);
    assert_int_equal(weft_fairlock_trylock(&l), 0);
    assert_int_equal(weft_fairlock_unlock(&l), 0);
    assert_int_equal(weft_fairlock_destroy(&l), 0);
}

/* The only waiter times out: the queue empties, unlock frees the lock, and
 * nothing is left behind. */
static void test_timeout_last_waiter(void **state)
{
    (void)state;
    weft_fairlock_t l;
    assert_int_equal(weft_fairlock_init(&l, "timeout1"), 0);
    struct timed w = {&l, 20 * 1000000LL, 0, 1};
    pthread_t t;
    weft_fairlock_lock(&l);
    uint64_t t0 = weft_now_ns();
    assert_int_equal(pthread_create(&t, NULL, timed_waiter, &w), 0);
    wtest_join(t, 10);
    assert_err(w.result, -ETIMEDOUT);
    assert_true(weft_now_ns() - t0 >= 20 * 1000000ULL);
    assert_int_equal(weft_fairlock_unlock(&l), 0);
    assert_int_equal(weft_fairlock_destroy(&l), 0);
    assert_int_equal(weft_fairlock_timedlock(&l, 0), 0);
    assert_int_equal(weft_fairlock_unlock(&l), 0);
}

/* ---- contention ------------------------------------------------------------- */

struct counter {
    weft_fairlock_t lock;
    long value; /* protected by lock */
};

static void *count_up(void *arg)
{
    struct counter *c = arg;
    unsigned seed = (unsigned)(uintptr_t)pthread_self();
    for (int i = 0; i < 2000; i++) {
        int r = 0;
        if (i % 3 == 0)
            weft_fairlock_lock(&c->lock);
        else
            r = weft_fairlock_timedlock(&c->lock, (int64_t)(rand_r(&seed) % 20000));
        if (r == -ETIMEDOUT) {
            i--;
            continue;
        }
        wtest_thread_check(r == 0);
        wtest_thread_check(weft_fairlock_held(&c->lock));
        c->value++;
        wtest_thread_check(weft_fairlock_unlock(&c->lock) == 0);
    }
    return NULL;
}

/* Plain and timed lockers mixed, with timeouts short enough that some
 * expire while the lock is being handed to them. */
static void test_contended_mixed(void **state)
{
    (void)state;
    static struct counter c;
    assert_int_equal(weft_fairlock_init(&c.lock, "mixed"), 0);
    c.value = 0;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, count_up, &c), 0);
    for (int i = 0; i < 4; i++)
        wtest_join(t[i], 10);
    assert_int_equal(c.value, 4 * 2000);
    assert_int_equal(weft_fairlock_destroy(&c.lock), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_invalid_arguments),
    cmocka_unit_test(test_static_initialiser),
    cmocka_unit_test(test_uncontended),
    cmocka_unit_test(test_unlock_by_non_owner),
    cmocka_unit_test(test_self_relock_aborts),
    cmocka_unit_test(test_fifo_order),
    cmocka_unit_test(test_trylock_does_not_barge),
    cmocka_unit_test(test_timeout_leaves_queue),
    cmocka_unit_test(test_timeout_last_waiter),
    cmocka_unit_test(test_contended_mixed),
};

WTEST_MAIN(tests)
