/*
 * Unit tests for weft_mutex_t: every function, every error return, the
 * static initialiser, lock_all ordering and the self-deadlock abort.
 *
 * Tests that need a second thread hold the lock there through a small
 * "holder" thread driven by two flags, and every wait in a test is bounded,
 * so a broken lock fails the case instead of hanging it.
 */
// ctest-timeout 60
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "weft.h"
#include "wtest.h"

/*
 * These tests misuse the mutex on purpose (unlock by a non-owner, double
 * unlock, try-locks whose result is asserted rather than branched on), which
 * clang's -Wthread-safety rightly rejects. tests/tools/ checks the analysis
 * itself; here it is switched off for the whole file.
 */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wthread-safety-analysis"
#endif

#define MS 1000000LL

/* ---- helpers ------------------------------------------------------------ */

/* Sleep for `ms` milliseconds (test pacing only, never an assertion). */
/* Spin-sleep until *flag becomes non-zero or `ms` pass; returns the flag. */
static int wait_flag(int *flag, long ms)
{
    uint64_t end = weft_now_ns() + (uint64_t)ms * MS;
    while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE) && weft_now_ns() < end)
        wtest_sleep_ms(1);
    return __atomic_load_n(flag, __ATOMIC_ACQUIRE);
}

/*
 * A thread that locks `m`, says so through `locked`, then holds the lock
 * until `release` is set and unlocks it (recording the unlock result).
 */
struct holder {
    weft_mutex_t *m;
    pthread_t thread;
    int locked;
    int release;
    int unlock_rc;
};

static void *holder_main(void *arg)
{
    struct holder *h = arg;
    weft_mutex_lock(h->m);
    __atomic_store_n(&h->locked, 1, __ATOMIC_RELEASE);
    wait_flag(&h->release, 30000);
    h->unlock_rc = weft_mutex_unlock(h->m);
    return NULL;
}

static void holder_start(struct holder *h, weft_mutex_t *m)
{
    memset(h, 0, sizeof *h);
    h->m = m;
    h->unlock_rc = 1;
    assert_int_equal(pthread_create(&h->thread, NULL, holder_main, h), 0);
    assert_true(wait_flag(&h->locked, 10000));
}

static void holder_stop(struct holder *h)
{
    __atomic_store_n(&h->release, 1, __ATOMIC_RELEASE);
    assert_int_equal(pthread_join(h->thread, NULL), 0);
    assert_int_equal(h->unlock_rc, 0);
}

/* The mutex is free and works: lock, held, unlock, trylock round trip. */
static void assert_usable(weft_mutex_t *m)
{
    assert_false(weft_mutex_held(m));
    weft_mutex_lock(m);
    assert_true(weft_mutex_held(m));
    assert_int_equal(weft_mutex_unlock(m), 0);
    assert_int_equal(weft_mutex_trylock(m), 0);
    assert_int_equal(weft_mutex_unlock(m), 0);
    assert_false(weft_mutex_held(m));
}

/* ---- init / destroy ------------------------------------------------------ */

static void test_null_arguments(void **state)
{
    (void)state;
    assert_err(weft_mutex_init(NULL, "x"), -EINVAL);
    assert_err(weft_mutex_destroy(NULL), -EINVAL);
    assert_err(weft_mutex_trylock(NULL), -EINVAL);
    assert_err(weft_mutex_timedlock(NULL, 0), -EINVAL);
    assert_err(weft_mutex_timedlock(NULL, WEFT_FOREVER), -EINVAL);
    assert_err(weft_mutex_unlock(NULL), -EINVAL);
    assert_false(weft_mutex_held(NULL));
}

static void test_init_destroy(void **state)
{
    (void)state;
    weft_mutex_t m;
    memset(&m, 0xa5, sizeof m);
    assert_int_equal(weft_mutex_init(&m, "plain"), 0);
    assert_string_equal(m._name, "plain");
    assert_usable(&m);
    assert_int_equal(weft_mutex_destroy(&m), 0);
    /* A NULL name is allowed. */
    assert_int_equal(weft_mutex_init(&m, NULL), 0);
    assert_usable(&m);
    assert_int_equal(weft_mutex_destroy(&m), 0);
}

static void test_destroy_busy_by_caller(void **state)
{
    (void)state;
    weft_mutex_t m;
    assert_int_equal(weft_mutex_init(&m, "busy"), 0);
    weft_mutex_lock(&m);
    assert_err(weft_mutex_destroy(&m), -EBUSY);
    /* The failed destroy changed nothing: still ours, still working. */
    assert_true(weft_mutex_held(&m));
    assert_int_equal(weft_mutex_unlock(&m), 0);
    assert_usable(&m);
    assert_int_equal(weft_mutex_destroy(&m), 0);
}

static void test_destroy_busy_by_other(void **state)
{
    (void)state;
    weft_mutex_t m;
    struct holder h;
    assert_int_equal(weft_mutex_init(&m, "busy-other"), 0);
    holder_start(&h, &m);
    assert_err(weft_mutex_destroy(&m), -EBUSY);
    holder_stop(&h);
    assert_usable(&m);
    assert_int_equal(weft_mutex_destroy(&m), 0);
}

/* ---- static initialiser -------------------------------------------------- */

static weft_mutex_t static_mutex = WEFT_MUTEX_INIT("static");

static void test_static_initialiser(void **state)
{
    (void)state;
    assert_string_equal(static_mutex._name, "static");
    assert_usable(&static_mutex);
    struct holder h;
    holder_start(&h, &static_mutex);
    assert_err(weft_mutex_trylock(&static_mutex), -EBUSY);
    assert_err(weft_mutex_timedlock(&static_mutex, 5 * MS), -ETIMEDOUT);
    holder_stop(&h);
    assert_usable(&static_mutex);
    assert_int_equal(weft_mutex_destroy(&static_mutex), 0);
}

/* ---- trylock ------------------------------------------------------------- */

static void test_trylock(void **state)
{
    (void)state;
    weft_mutex_t m = WEFT_MUTEX_INIT("try");
    assert_int_equal(weft_mutex_trylock(&m), 0);
    assert_true(weft_mutex_held(&m));
    /* Held by the caller: -EBUSY, not a recursive acquisition. */
    assert_err(weft_mutex_trylock(&m), -EBUSY);
    assert_int_equal(weft_mutex_unlock(&m), 0);
    /* One unlock released it, so the failed trylock did not count. */
    assert_false(weft_mutex_held(&m));
    struct holder h;
    holder_start(&h, &m);
    assert_err(weft_mutex_trylock(&m), -EBUSY);
    assert_false(weft_mutex_held(&m));
    holder_stop(&h);
    assert_usable(&m);
}

/* ---- timedlock ----------------------------------------------------------- */

static void test_timedlock_free(void **state)
{
    (void)state;
    weft_mutex_t m = WEFT_MUTEX_INIT("timed-free");
    assert_int_equal(weft_mutex_timedlock(&m, 0), 0);
    assert_true(weft_mutex_held(&m));
    assert_int_equal(weft_mutex_unlock(&m), 0);
    assert_int_equal(weft_mutex_timedlock(&m, 10 * MS), 0);
    assert_int_equal(weft_mutex_unlock(&m), 0);
    assert_int_equal(weft_mutex_timedlock(&m, WEFT_FOREVER), 0);
    assert_int_equal(weft_mutex_unlock(&m), 0);
    assert_int_equal(weft_mutex_timedlock(&m, INT64_MAX), 0);
    assert_int_equal(weft_mutex_unlock(&m), 0);
}

static void test_timedlock_timeout(void **state)
{
    (void)state;
    weft_mutex_t m = WEFT_MUTEX_INIT("timed-out");
    struct holder h;
    holder_start(&h, &m);
    assert_err(weft_mutex_timedlock(&m, 0), -ETIMEDOUT);
    uint64_t t0 = weft_now_ns();
    assert_err(weft_mutex_timedlock(&m, 50 * MS), -ETIMEDOUT);
    uint64_t waited = weft_now_ns() - t0;
    /* Not early, and not unboundedly late (a sanity bound, not speed). */
    assert_true(waited >= 50 * MS);
    assert_true(waited < 5000 * MS);
    assert_false(weft_mutex_held(&m));
    holder_stop(&h);
    assert_usable(&m);
}

static void *release_later(void *arg)
{
    struct holder *h = arg;
    wtest_sleep_ms(30);
    __atomic_store_n(&h->release, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void test_timedlock_acquires_on_release(void **state)
{
    (void)state;
    weft_mutex_t m = WEFT_MUTEX_INIT("timed-wait");
    struct holder h;
    pthread_t t;
    holder_start(&h, &m);
    assert_int_equal(pthread_create(&t, NULL, release_later, &h), 0);
    /* The holder lets go after ~30 ms: the waiter gets the lock, parked. */
    assert_int_equal(weft_mutex_timedlock(&m, 10000 * MS), 0);
    assert_true(weft_mutex_held(&m));
    assert_int_equal(weft_mutex_unlock(&m), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(pthread_join(h.thread, NULL), 0);
    assert_int_equal(h.unlock_rc, 0);
    assert_usable(&m);
}

static void test_timedlock_deadlk(void **state)
{
    (void)state;
    weft_mutex_t m = WEFT_MUTEX_INIT("timed-self");
    weft_mutex_lock(&m);
    assert_err(weft_mutex_timedlock(&m, 0), -EDEADLK);
    assert_err(weft_mutex_timedlock(&m, 10 * MS), -EDEADLK);
    assert_err(weft_mutex_timedlock(&m, WEFT_FOREVER), -EDEADLK);
    assert_true(weft_mutex_held(&m));
    assert_int_equal(weft_mutex_unlock(&m), 0);
    assert_usable(&m);
}

static void test_timedlock_bad_timeout(void **state)
{
    (void)state;
    weft_mutex_t m = WEFT_MUTEX_INIT("timed-bad");
    assert_err(weft_mutex_timedlock(&m, -2), -EINVAL);
    assert_err(weft_mutex_timedlock(&m, -1000000000), -EINVAL);
    assert_err(weft_mutex_timedlock(&m, INT64_MIN), -EINVAL);
    /* Rejected before touching the lock. */
    assert_false(weft_mutex_held(&m));
    assert_usable(&m);
    weft_mutex_lock(&m);
    assert_err(weft_mutex_timedlock(&m, -5), -EINVAL);
    assert_int_equal(weft_mutex_unlock(&m), 0);
}

/* ---- unlock / held ------------------------------------------------------- */

static void test_unlock_not_owner(void **state)
{
    (void)state;
    weft_mutex_t m = WEFT_MUTEX_INIT("eperm");
    assert_err(weft_mutex_unlock(&m), -EPERM); /* not held at all */
    assert_usable(&m);
    weft_mutex_lock(&m);
    assert_int_equal(weft_mutex_unlock(&m), 0);
    assert_err(weft_mutex_unlock(&m), -EPERM); /* double unlock */

    struct holder h;
    holder_start(&h, &m);
    assert_err(weft_mutex_unlock(&m), -EPERM); /* held by another thread */
    /* Nothing changed: the holder still owns it. */
    assert_err(weft_mutex_trylock(&m), -EBUSY);
    assert_err(weft_mutex_destroy(&m), -EBUSY);
    holder_stop(&h);
    assert_usable(&m);
}

static void *held_in_thread(void *arg)
{
    return (void *)(intptr_t)weft_mutex_held(arg);
}

static void test_held(void **state)
{
    (void)state;
    weft_mutex_t m = WEFT_MUTEX_INIT("held");
    assert_false(weft_mutex_held(&m));
    weft_mutex_lock(&m);
    assert_true(weft_mutex_held(&m));
    pthread_t t;
    void *other = (void *)1;
    assert_int_equal(pthread_create(&t, NULL, held_in_thread, &m), 0);
    assert_int_equal(pthread_join(t, &other), 0);
    assert_null(other); /* the other thread does not hold it */
    assert_int_equal(weft_mutex_unlock(&m), 0);
    assert_false(weft_mutex_held(&m));
}

/* ---- mutual exclusion (small; tests/stress/ has the big one) ------------- */

struct counter {
    weft_mutex_t m;
    long value;
    int inside;
    int overlaps;
    int errors; /* atomic: unexpected return codes */
};

static void *count_main(void *arg)
{
    struct counter *c = arg;
    for (int i = 0; i < 20000; i++) {
        if (i % 3 == 0)
            weft_mutex_lock(&c->m);
        else if (i % 3 == 1 && weft_mutex_trylock(&c->m) != 0)
            weft_mutex_lock(&c->m);
        else if (i % 3 == 2 && weft_mutex_timedlock(&c->m, WEFT_FOREVER) != 0)
            __atomic_fetch_add(&c->errors, 1, __ATOMIC_RELAXED);
        if (c->inside++ != 0)
            c->overlaps++;
        c->value++;
        c->inside--;
        if (weft_mutex_unlock(&c->m) != 0)
            __atomic_fetch_add(&c->errors, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void test_mutual_exclusion(void **state)
{
    (void)state;
    struct counter c = {.m = WEFT_MUTEX_INIT("count")};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, count_main, &c), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(c.value, 4 * 20000);
    assert_int_equal(c.overlaps, 0);
    assert_int_equal(c.errors, 0);
    assert_int_equal(weft_mutex_destroy(&c.m), 0);
}

/* ---- lock_all / unlock_all ----------------------------------------------- */

static weft_mutex_t set[4] = {
    WEFT_MUTEX_INIT("set0"),
    WEFT_MUTEX_INIT("set1"),
    WEFT_MUTEX_INIT("set2"),
    WEFT_MUTEX_INIT("set3"),
};

static void test_lock_all_skips_null_and_duplicates(void **state)
{
    (void)state;
    weft_mutex_t *ms[] = {&set[2], NULL, &set[0], &set[2], NULL, &set[3], &set[0]};
    /* A duplicate taken twice would abort as a self-deadlock. */
    weft_mutex_lock_all(ms, sizeof ms / sizeof ms[0]);
    assert_true(weft_mutex_held(&set[0]));
    assert_false(weft_mutex_held(&set[1]));
    assert_true(weft_mutex_held(&set[2]));
    assert_true(weft_mutex_held(&set[3]));
    weft_mutex_unlock_all(ms, sizeof ms / sizeof ms[0]);
    for (int i = 0; i < 4; i++)
        assert_usable(&set[i]);
    /* Empty and NULL sets are no-ops. */
    weft_mutex_t *none[] = {NULL, NULL};
    weft_mutex_lock_all(none, 2);
    weft_mutex_unlock_all(none, 2);
    weft_mutex_lock_all(NULL, 3);
    weft_mutex_unlock_all(NULL, 3);
    weft_mutex_lock_all(ms, 0);
    weft_mutex_unlock_all(ms, 0);
    for (int i = 0; i < 4; i++)
        assert_false(weft_mutex_held(&set[i]));
}

struct lock_all_arg {
    weft_mutex_t *const *ms;
    size_t n;
    int done;
};

static void *lock_all_main(void *arg)
{
    struct lock_all_arg *a = arg;
    weft_mutex_lock_all(a->ms, a->n);
    __atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
    weft_mutex_unlock_all(a->ms, a->n);
    return NULL;
}

/*
 * Address order is observable: while another thread holds the lowest
 * mutex, lock_all({high, low}) must block on `low` without having taken
 * `high` (which it would have, had it followed the array order).
 */
static void test_lock_all_address_order(void **state)
{
    (void)state;
    weft_mutex_t *low = &set[0], *high = &set[3];
    assert_true((uintptr_t)low < (uintptr_t)high);
    weft_mutex_t *ms[] = {high, low};
    struct lock_all_arg a = {ms, 2, 0};
    struct holder h;
    pthread_t t;
    holder_start(&h, low);
    assert_int_equal(pthread_create(&t, NULL, lock_all_main, &a), 0);
    wtest_sleep_ms(50);
    assert_false(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE));
    assert_int_equal(weft_mutex_trylock(high), 0); /* not taken yet */
    assert_int_equal(weft_mutex_unlock(high), 0);
    holder_stop(&h);
    assert_true(wait_flag(&a.done, 10000));
    assert_int_equal(pthread_join(t, NULL), 0);
    for (int i = 0; i < 4; i++)
        assert_usable(&set[i]);
}

struct crossing {
    weft_mutex_t *const *ms;
    size_t n;
    int rounds;
    long *shared;
};

static void *crossing_main(void *arg)
{
    struct crossing *c = arg;
    for (int i = 0; i < c->rounds; i++) {
        weft_mutex_lock_all(c->ms, c->n);
        (*c->shared)++;
        weft_mutex_unlock_all(c->ms, c->n);
    }
    return NULL;
}

struct watched {
    pthread_t t[2];
    int finished;
};

static void *join_both(void *arg)
{
    struct watched *w = arg;
    pthread_join(w->t[0], NULL);
    pthread_join(w->t[1], NULL);
    __atomic_store_n(&w->finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

/*
 * Two threads lock overlapping sets given in opposite array orders, many
 * times. Array order would deadlock quickly; address order never does.
 * A watchdog bounds the wait, so a deadlock fails instead of hanging.
 */
static void test_lock_all_opposite_orders(void **state)
{
    (void)state;
    static long shared;
    weft_mutex_t *fwd[] = {&set[0], &set[1], &set[2], &set[3]};
    weft_mutex_t *rev[] = {&set[3], NULL, &set[2], &set[1], &set[0], &set[2]};
    struct crossing a = {fwd, 4, 100000, &shared};
    struct crossing b = {rev, 6, 100000, &shared};
    struct watched w = {.finished = 0};
    pthread_t joiner;
    assert_int_equal(pthread_create(&w.t[0], NULL, crossing_main, &a), 0);
    assert_int_equal(pthread_create(&w.t[1], NULL, crossing_main, &b), 0);
    assert_int_equal(pthread_create(&joiner, NULL, join_both, &w), 0);
    if (!wait_flag(&w.finished, 30000))
        fail_msg("lock_all deadlocked: threads still blocked after 30 s");
    assert_int_equal(pthread_join(joiner, NULL), 0);
    assert_int_equal(shared, 200000);
    for (int i = 0; i < 4; i++)
        assert_usable(&set[i]);
}

/* ---- misuse that must abort ---------------------------------------------- */

/* Runs fn in a forked child with stderr captured; returns the wait status
 * and fills buf with what the child wrote. */
static int run_child(void (*fn)(void), char *buf, size_t size)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGABRT, SIG_DFL);
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        fn();
        _exit(0);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t r;
    while (len + 1 < size && (r = read(fds[0], buf + len, size - 1 - len)) != 0) {
        if (r > 0)
            len += (size_t)r;
        else if (errno != EINTR)
            break;
    }
    buf[len] = '\0';
    close(fds[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

static void relock_child(void)
{
    static weft_mutex_t m = WEFT_MUTEX_INIT("relocked-mutex");
    weft_mutex_lock(&m);
    weft_mutex_lock(&m); /* certain deadlock: must abort, not hang */
}

static void test_relock_aborts(void **state)
{
    (void)state;
    char out[4096];
    int st = run_child(relock_child, out, sizeof out);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
    assert_non_null(strstr(out, "relocked-mutex"));
    assert_non_null(strstr(out, "deadlock"));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_null_arguments),
    cmocka_unit_test(test_init_destroy),
    cmocka_unit_test(test_destroy_busy_by_caller),
    cmocka_unit_test(test_destroy_busy_by_other),
    cmocka_unit_test(test_static_initialiser),
    cmocka_unit_test(test_trylock),
    cmocka_unit_test(test_timedlock_free),
    cmocka_unit_test(test_timedlock_timeout),
    cmocka_unit_test(test_timedlock_acquires_on_release),
    cmocka_unit_test(test_timedlock_deadlk),
    cmocka_unit_test(test_timedlock_bad_timeout),
    cmocka_unit_test(test_unlock_not_owner),
    cmocka_unit_test(test_held),
    cmocka_unit_test(test_mutual_exclusion),
    cmocka_unit_test(test_lock_all_skips_null_and_duplicates),
    cmocka_unit_test(test_lock_all_address_order),
    cmocka_unit_test(test_lock_all_opposite_orders),
    cmocka_unit_test(test_relock_aborts),
};

WTEST_MAIN(tests)
