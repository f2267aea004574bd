/*
 * Unit tests for weft_cond_t: argument checks, -EPERM without the mutex,
 * timeouts that re-acquire the mutex, -EBUSY destroy with waiters, signal
 * waking exactly one sleeper and broadcast waking all, and a long
 * ping-pong that would stall on any lost wake-up.
 *
 * "Asleep" is observed, not guessed: a waiter counts as asleep once
 * /proc/self/task/TID/syscall shows it in futex(2) on the condition's
 * word (a test may read that private field to find the address), so the
 * wake-one/wake-all assertions do not depend on sleeps being long enough.
 */
// ctest-timeout 60
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "weft.h"
#include "wtest.h"

#define MS 1000000LL

/* ---- helpers ------------------------------------------------------------ */

/* True once thread `tid` of this process is inside futex(2) on `addr`. */
static int in_futex(uint32_t tid, const void *addr)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%u/syscall", tid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    long nr = -1;
    unsigned long arg0 = 0;
    int ok = fgets(buf, sizeof buf, f) != NULL && sscanf(buf, "%ld %lx", &nr, &arg0) == 2 &&
             nr == SYS_futex && arg0 == (unsigned long)(uintptr_t)addr;
    fclose(f);
    return ok;
}

/* Waits (bounded) until every tid in tids[0..n) sleeps in futex(2) on addr. */
static int all_in_futex(const uint32_t *tids, int n, const void *addr, long ms)
{
    uint64_t end = weft_now_ns() + (uint64_t)ms * MS;
    for (;;) {
        int asleep = 0;
        for (int i = 0; i < n; i++)
            asleep += in_futex(__atomic_load_n(&tids[i], __ATOMIC_ACQUIRE), addr);
        if (asleep == n)
            return 1;
        if (weft_now_ns() >= end)
            return 0;
        wtest_sleep_ms(1);
    }
}

/* Waits (bounded) until *v reaches at least `want`; returns the value. */
static int wait_count(int *v, int want, long ms)
{
    uint64_t end = weft_now_ns() + (uint64_t)ms * MS;
    while (__atomic_load_n(v, __ATOMIC_ACQUIRE) < want && weft_now_ns() < end)
        wtest_sleep_ms(1);
    return __atomic_load_n(v, __ATOMIC_ACQUIRE);
}

/* ---- arguments and init/destroy ------------------------------------------ */

static void test_null_arguments(void **state)
{
    (void)state;
    weft_cond_t c = WEFT_COND_INIT("c");
    weft_mutex_t m = WEFT_MUTEX_INIT("m");
    assert_err(weft_cond_init(NULL, "x"), -EINVAL);
    assert_err(weft_cond_destroy(NULL), -EINVAL);
    assert_err(weft_cond_signal(NULL), -EINVAL);
    assert_err(weft_cond_broadcast(NULL), -EINVAL);
    weft_mutex_lock(&m);
    assert_err(weft_cond_wait(NULL, &m), -EINVAL);
    assert_err(weft_cond_wait(&c, NULL), -EINVAL);
    assert_err(weft_cond_timedwait(NULL, &m, 0), -EINVAL);
    assert_err(weft_cond_timedwait(&c, NULL, 0), -EINVAL);
    /* Rejections leave the mutex held. */
    assert_true(weft_mutex_held(&m));
    assert_int_equal(weft_mutex_unlock(&m), 0);
}

static void test_init_destroy(void **state)
{
    (void)state;
    weft_cond_t c;
    memset(&c, 0x5a, sizeof c);
    assert_int_equal(weft_cond_init(&c, "cv"), 0);
    assert_string_equal(c._name, "cv");
    assert_int_equal(weft_cond_signal(&c), 0);
    assert_int_equal(weft_cond_broadcast(&c), 0);
    assert_int_equal(weft_cond_destroy(&c), 0);
    assert_int_equal(weft_cond_init(&c, NULL), 0);
    assert_int_equal(weft_cond_destroy(&c), 0);
}

static void test_static_initialiser(void **state)
{
    (void)state;
    static weft_cond_t c = WEFT_COND_INIT("static-cv");
    static weft_mutex_t m = WEFT_MUTEX_INIT("static-m");
    assert_string_equal(c._name, "static-cv");
    weft_mutex_lock(&m);
    assert_err(weft_cond_timedwait(&c, &m, 1 * MS), -ETIMEDOUT);
    assert_true(weft_mutex_held(&m));
    assert_int_equal(weft_mutex_unlock(&m), 0);
    assert_int_equal(weft_cond_destroy(&c), 0);
}

/* ---- -EPERM and -EINVAL -------------------------------------------------- */

static void *hold_and_wait(void *arg)
{
    weft_mutex_t *m = arg;
    weft_mutex_lock(m);
    wtest_sleep_ms(200);
    (void)weft_mutex_unlock(m);
    return NULL;
}

/* The misuse is deliberate; clang's analysis would reject it at compile time. */
static WEFT_NO_THREAD_SAFETY_ANALYSIS void test_wait_without_mutex(void **state)
{
    (void)state;
    weft_cond_t c = WEFT_COND_INIT("eperm");
    weft_mutex_t m = WEFT_MUTEX_INIT("eperm-m");
    /* Not held by anyone. */
    assert_err(weft_cond_wait(&c, &m), -EPERM);
    assert_err(weft_cond_timedwait(&c, &m, 10 * MS), -EPERM);
    assert_false(weft_mutex_held(&m));
    /* Held by another thread. */
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, hold_and_wait, &m), 0);
    while (weft_mutex_trylock(&m) == 0) {
        (void)weft_mutex_unlock(&m);
        wtest_sleep_ms(1);
    }
    assert_err(weft_cond_wait(&c, &m), -EPERM);
    assert_err(weft_cond_timedwait(&c, &m, 0), -EPERM);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(weft_cond_destroy(&c), 0);
}

static void test_timedwait_bad_timeout(void **state)
{
    (void)state;
    weft_cond_t c = WEFT_COND_INIT("einval");
    weft_mutex_t m = WEFT_MUTEX_INIT("einval-m");
    weft_mutex_lock(&m);
    assert_err(weft_cond_timedwait(&c, &m, -2), -EINVAL);
    assert_err(weft_cond_timedwait(&c, &m, INT64_MIN), -EINVAL);
    assert_true(weft_mutex_held(&m));
    assert_int_equal(weft_mutex_unlock(&m), 0);
}

/* ---- timeouts ------------------------------------------------------------ */

static void test_timedwait_timeout_reacquires(void **state)
{
    (void)state;
    weft_cond_t c = WEFT_COND_INIT("timeout");
    weft_mutex_t m = WEFT_MUTEX_INIT("timeout-m");
    weft_mutex_lock(&m);
    assert_err(weft_cond_timedwait(&c, &m, 0), -ETIMEDOUT);
    assert_true(weft_mutex_held(&m));
    uint64_t t0 = weft_now_ns();
    assert_err(weft_cond_timedwait(&c, &m, 50 * MS), -ETIMEDOUT);
    uint64_t waited = weft_now_ns() - t0;
    assert_true(weft_mutex_held(&m));
    assert_true(waited >= 50 * MS);
    assert_true(waited < 5000 * MS);
    assert_int_equal(weft_mutex_unlock(&m), 0);
    assert_int_equal(weft_cond_destroy(&c), 0);
}

static void test_signal_without_waiters_is_forgotten(void **state)
{
    (void)state;
    weft_cond_t c = WEFT_COND_INIT("forget");
    weft_mutex_t m = WEFT_MUTEX_INIT("forget-m");
    /* A condition variable has no memory: earlier signals wake nobody. */
    assert_int_equal(weft_cond_signal(&c), 0);
    assert_int_equal(weft_cond_broadcast(&c), 0);
    weft_mutex_lock(&m);
    assert_err(weft_cond_timedwait(&c, &m, 20 * MS), -ETIMEDOUT);
    assert_int_equal(weft_mutex_unlock(&m), 0);
}

/*
 * A thread holding the mutex through its timeout: the waiter's -ETIMEDOUT
 * must wait for the mutex too, because it returns with the mutex held.
 */
static void *grab_after(void *arg)
{
    weft_mutex_t *m = arg;
    wtest_sleep_ms(5);
    weft_mutex_lock(m);
    wtest_sleep_ms(100);
    (void)weft_mutex_unlock(m);
    return NULL;
}

static void test_timeout_waits_for_mutex(void **state)
{
    (void)state;
    weft_cond_t c = WEFT_COND_INIT("busy-timeout");
    weft_mutex_t m = WEFT_MUTEX_INIT("busy-timeout-m");
    pthread_t t;
    weft_mutex_lock(&m);
    assert_int_equal(pthread_create(&t, NULL, grab_after, &m), 0);
    uint64_t t0 = weft_now_ns();
    assert_err(weft_cond_timedwait(&c, &m, 20 * MS), -ETIMEDOUT);
    assert_true(weft_mutex_held(&m));
    assert_true(weft_now_ns() - t0 >= 100 * MS);
    assert_int_equal(weft_mutex_unlock(&m), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
}

/* ---- wake-ups ------------------------------------------------------------ */

enum { NWAITERS = 4 };

struct room {
    weft_mutex_t m;
    weft_cond_t c;
    uint32_t tids[NWAITERS]; /* written once by each waiter */
    int returned;            /* atomic: waits that came back */
    int errors;              /* atomic: bad return codes or mutex not held */
    int go;                  /* protected by m */
};

struct waiter_arg {
    struct room *r;
    int index;
    int timed;
};

/*
 * One wait, no predicate loop: the test counts how many waits a signal or
 * broadcast ends. The waiter records its tid and holds the mutex until
 * cond_wait releases it, so once the main thread can lock the mutex and
 * sees it in futex(2), the waiter is asleep on the condition.
 */
static void *waiter_main(void *arg)
{
    struct waiter_arg *a = arg;
    struct room *r = a->r;
    weft_mutex_lock(&r->m);
    __atomic_store_n(&r->tids[a->index], weft_thread_id(), __ATOMIC_RELEASE);
    int rc =
        a->timed ? weft_cond_timedwait(&r->c, &r->m, 20000 * MS) : weft_cond_wait(&r->c, &r->m);
    if (rc != 0 || !weft_mutex_held(&r->m))
        __atomic_fetch_add(&r->errors, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&r->returned, 1, __ATOMIC_RELEASE);
    (void)weft_mutex_unlock(&r->m);
    return NULL;
}

static void start_waiters(struct room *r, struct waiter_arg *a, pthread_t *t)
{
    weft_mutex_init(&r->m, "room");
    weft_cond_init(&r->c, "room-cv");
    for (int i = 0; i < NWAITERS; i++) {
        a[i] = (struct waiter_arg){r, i, i % 2};
        assert_int_equal(pthread_create(&t[i], NULL, waiter_main, &a[i]), 0);
    }
    for (int i = 0; i < NWAITERS; i++)
        while (__atomic_load_n(&r->tids[i], __ATOMIC_ACQUIRE) == 0)
            wtest_sleep_ms(1);
    assert_true(all_in_futex(r->tids, NWAITERS, &r->c._seq, 10000));
    assert_int_equal(__atomic_load_n(&r->returned, __ATOMIC_ACQUIRE), 0);
}

static void join_waiters(struct room *r, pthread_t *t)
{
    for (int i = 0; i < NWAITERS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(r->errors, 0);
    assert_int_equal(weft_cond_destroy(&r->c), 0);
    assert_int_equal(weft_mutex_destroy(&r->m), 0);
}

static void test_signal_wakes_one(void **state)
{
    (void)state;
    struct room r = {0};
    struct waiter_arg a[NWAITERS];
    pthread_t t[NWAITERS];
    start_waiters(&r, a, t);
    for (int k = 1; k <= NWAITERS; k++) {
        assert_int_equal(weft_cond_signal(&r.c), 0);
        assert_int_equal(wait_count(&r.returned, k, 10000), k);
        /* Give a second (wrong) wake-up time to show itself. */
        wtest_sleep_ms(30);
        assert_int_equal(__atomic_load_n(&r.returned, __ATOMIC_ACQUIRE), k);
    }
    join_waiters(&r, t);
}

static void test_broadcast_wakes_all(void **state)
{
    (void)state;
    struct room r = {0};
    struct waiter_arg a[NWAITERS];
    pthread_t t[NWAITERS];
    start_waiters(&r, a, t);
    assert_int_equal(weft_cond_broadcast(&r.c), 0);
    assert_int_equal(wait_count(&r.returned, NWAITERS, 10000), NWAITERS);
    join_waiters(&r, t);
}

static void test_destroy_busy_with_waiters(void **state)
{
    (void)state;
    struct room r = {0};
    struct waiter_arg a[NWAITERS];
    pthread_t t[NWAITERS];
    start_waiters(&r, a, t);
    assert_err(weft_cond_destroy(&r.c), -EBUSY);
    /* The failed destroy changed nothing: the waiters still wake. */
    assert_int_equal(weft_cond_broadcast(&r.c), 0);
    assert_int_equal(wait_count(&r.returned, NWAITERS, 10000), NWAITERS);
    join_waiters(&r, t);
}

/* ---- predicate waits and the ping-pong ----------------------------------- */

enum { HANDOFFS = 100000 };

struct pingpong {
    weft_mutex_t m;
    weft_cond_t turn_cv[2];
    int turn;  /* protected by m: whose move it is, 0 or 1 */
    long done; /* protected by m: hand-offs made */
    int lost;  /* atomic: waits that timed out with the turn not theirs */
};

struct player {
    struct pingpong *p;
    int me;
};

/*
 * Each move waits for `turn == me` with a generous timeout; a timeout means
 * the other side's signal was lost (there is no other way for the turn to
 * stay unchanged that long), and is counted rather than waited out forever.
 */
static void *player_main(void *arg)
{
    struct player *pl = arg;
    struct pingpong *p = pl->p;
    weft_mutex_lock(&p->m);
    while (p->done < HANDOFFS && p->lost == 0) {
        while (p->turn != pl->me && p->done < HANDOFFS && p->lost == 0) {
            if (weft_cond_timedwait(&p->turn_cv[pl->me], &p->m, 10000 * MS) == -ETIMEDOUT &&
                p->turn != pl->me)
                __atomic_fetch_add(&p->lost, 1, __ATOMIC_RELAXED);
        }
        if (p->turn == pl->me && p->done < HANDOFFS) {
            p->done++;
            p->turn = !pl->me;
            (void)weft_cond_signal(&p->turn_cv[!pl->me]);
        }
    }
    (void)weft_cond_broadcast(&p->turn_cv[!pl->me]);
    (void)weft_mutex_unlock(&p->m);
    return NULL;
}

static void test_pingpong_no_lost_wakeup(void **state)
{
    (void)state;
    static struct pingpong p = {
        .m = WEFT_MUTEX_INIT("pingpong"),
        .turn_cv = {WEFT_COND_INIT("ping"), WEFT_COND_INIT("pong")},
    };
    struct player pl[2] = {{&p, 0}, {&p, 1}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, player_main, &pl[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(p.lost, 0);
    assert_int_equal(p.done, HANDOFFS);
    assert_int_equal(weft_cond_destroy(&p.turn_cv[0]), 0);
    assert_int_equal(weft_cond_destroy(&p.turn_cv[1]), 0);
}

struct flag_wait {
    weft_mutex_t m;
    weft_cond_t c;
    int ready; /* protected by m */
};

static void *set_ready(void *arg)
{
    struct flag_wait *f = arg;
    wtest_sleep_ms(20);
    weft_mutex_lock(&f->m);
    f->ready = 1;
    (void)weft_mutex_unlock(&f->m);
    (void)weft_cond_signal(&f->c); /* signalling without the mutex is allowed */
    return NULL;
}

static void test_wait_returns_with_mutex_held(void **state)
{
    (void)state;
    struct flag_wait f = {WEFT_MUTEX_INIT("flag"), WEFT_COND_INIT("flag-cv"), 0};
    pthread_t t;
    weft_mutex_lock(&f.m);
    assert_int_equal(pthread_create(&t, NULL, set_ready, &f), 0);
    int rc = 0;
    while (!f.ready && rc == 0)
        rc = weft_cond_timedwait(&f.c, &f.m, WEFT_FOREVER);
    assert_int_equal(rc, 0);
    assert_true(f.ready);
    assert_true(weft_mutex_held(&f.m));
    assert_int_equal(weft_mutex_unlock(&f.m), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_null_arguments),
    cmocka_unit_test(test_init_destroy),
    cmocka_unit_test(test_static_initialiser),
    cmocka_unit_test(test_wait_without_mutex),
    cmocka_unit_test(test_timedwait_bad_timeout),
    cmocka_unit_test(test_timedwait_timeout_reacquires),
    cmocka_unit_test(test_signal_without_waiters_is_forgotten),
    cmocka_unit_test(test_timeout_waits_for_mutex),
    cmocka_unit_test(test_signal_wakes_one),
    cmocka_unit_test(test_broadcast_wakes_all),
    cmocka_unit_test(test_destroy_busy_with_waiters),
    cmocka_unit_test(test_pingpong_no_lost_wakeup),
    cmocka_unit_test(test_wait_returns_with_mutex_held),
};

WTEST_MAIN(tests)
