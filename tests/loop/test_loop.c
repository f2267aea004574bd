/* Unit tests for the event loop core: run modes, timers, I/O watchers,
 * async wake-ups, signals, offload and destroy. */
// ctest-timeout 20
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "weft.h"
#include "wtest.h"

#define MS 1000000ull

static weft_loop_t *new_loop(void)
{
    weft_loop_t *l = NULL;
    assert_int_equal(weft_loop_create(&l, NULL), 0);
    return l;
}

/* A guard timer: fails the test if the loop is still running after 5 s. */
static void guard_fired(weft_timer_t *t)
{
    (void)t;
    fail_msg("loop still running after the guard timeout");
}

static void guard_start(weft_loop_t *l, weft_timer_t *g)
{
    assert_int_equal(weft_timer_init(l, g), 0);
    assert_int_equal(weft_timer_start(g, guard_fired, 5000 * MS, 0), 0);
}

static void test_create_and_args(void **state)
{
    (void)state;
    weft_loop_opts_t zero = {0};
    weft_loop_t *l = NULL;
    assert_err(weft_loop_create(NULL, NULL), -EINVAL);
    assert_int_equal(weft_loop_create(&l, &zero), 0);
    assert_int_equal(weft_loop_run(l, WEFT_RUN_DEFAULT), 0);
    assert_int_equal(weft_loop_run(l, WEFT_RUN_NOWAIT), 0);
    assert_err(weft_loop_run(l, (weft_run_mode_t)7), -EINVAL);
    weft_timer_t t;
    assert_err(weft_timer_init(NULL, &t), -EINVAL);
    assert_int_equal(weft_timer_init(l, &t), 0);
    assert_err(weft_timer_start(&t, NULL, 0, 0), -EINVAL);
    weft_io_t io;
    assert_err(weft_io_init(l, &io, -1), -EINVAL);
    weft_async_t a;
    assert_int_equal(weft_async_init(l, &a), 0);
    assert_err(weft_async_start(&a, NULL), -EINVAL);
    weft_signal_t s;
    assert_int_equal(weft_signal_init(l, &s), 0);
    assert_err(weft_signal_start(&s, NULL, SIGUSR1), -EINVAL);
    assert_err(weft_loop_offload(l, NULL, NULL, NULL, NULL), -EINVAL);
    assert_err(weft_loop_stats(l, NULL), -EINVAL);
    assert_err(weft_loop_destroy(NULL), -EINVAL);
    assert_int_equal(weft_loop_destroy(l), 0);
}

/* ---- timers ------------------------------------------------------------------ */

typedef struct fired {
    int order[64];
    int n;
    uint64_t started;
} fired_t;

typedef struct tcase {
    weft_timer_t t;
    fired_t *log;
    int id;
    uint64_t timeout;
    uint64_t fired_at;
} tcase_t;

static void record_fire(weft_timer_t *t)
{
    tcase_t *c = t->data;
    c->fired_at = weft_now_ns();
    c->log->order[c->log->n++] = c->id;
}

static void test_timers_in_order_not_early(void **state)
{
    (void)state;
    weft_loop_t *l = new_loop();
    static const uint64_t ms[] = {30, 10, 20, 10, 0, 20, 10, 5};
    enum { N = sizeof ms / sizeof ms[0] };
    tcase_t c[N];
    fired_t log = {.n = 0};
    uint64_t t0 = weft_now_ns();
    for (int i = 0; i < N; i++) {
        c[i] = (tcase_t){.log = &log, .id = i, .timeout = ms[i] * MS};
        assert_int_equal(weft_timer_init(l, &c[i].t), 0);
        c[i].t.data = &c[i];
    }
    /* Start the equal ones with one due time by starting them "at once":
     * the order among equal timeouts must be the start order. */
    for (int i = 0; i < N; i++)
        assert_int_equal(weft_timer_start(&c[i].t, record_fire, c[i].timeout, 0), 0);
    assert_int_equal(weft_loop_run(l, WEFT_RUN_DEFAULT), 0);
    static const int want[] = {4, 7, 1, 3, 6, 2, 5, 0};
    assert_int_equal(log.n, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(log.order[i], want[i]);
        assert_true(c[i].fired_at >= t0 + c[i].timeout);
    }
    assert_int_equal(weft_loop_destroy(l), 0);
}

static int thousands_fired;
static uint64_t thousands_last_due;
static void thousands_cb(weft_timer_t *t)
{
    /* Not early: data holds a lower bound of the due time (the clock read
     * before the start). In order: the heap's own due times (a white-box
     * look at the private field) never go backwards. */
    assert_true(weft_now_ns() >= (uint64_t)(uintptr_t)t->data);
    assert_true(t->_due >= thousands_last_due);
    thousands_last_due = t->_due;
    thousands_fired++;
}

static void test_thousands_of_timers(void **state)
{
    (void)state;
    enum { N = 5000 };
    weft_loop_t *l = new_loop();
    weft_timer_t *t = calloc(N, sizeof *t);
    srand(42);
    for (int i = 0; i < N; i++) {
        uint64_t timeout = (uint64_t)(rand() % 50) * MS + (uint64_t)(rand() % 1000) * 1000;
        weft_timer_init(l, &t[i]);
        /* Start reads the clock itself, after this read. */
        t[i].data = (void *)(uintptr_t)(weft_now_ns() + timeout);
        assert_int_equal(weft_timer_start(&t[i], thousands_cb, timeout, 0), 0);
    }
    for (int i = 0; i < N; i += 2)
        assert_int_equal(weft_timer_stop(&t[i]), 0);
    assert_int_equal(weft_loop_run(l, WEFT_RUN_DEFAULT), 0);
    assert_int_equal(thousands_fired, N / 2);
    weft_loop_stats_t st;
    weft_loop_stats(l, &st);
    assert_int_equal(st.callbacks, N / 2);
    assert_int_equal(st.active_handles, 0);
    assert_int_equal(weft_loop_destroy(l), 0);
    free(t);
}

static int repeats;
static void repeat_cb(weft_timer_t *t)
{
    if (++repeats == 5)
        weft_timer_stop(t);
}

static void test_repeating_timer(void **state)
{
    (void)state;
    weft_loop_t *l = new_loop();
    weft_timer_t t;
    weft_timer_init(l, &t);
    uint64_t t0 = weft_now_ns();
    weft_timer_start(&t, repeat_cb, 2 * MS, 3 * MS);
    assert_int_equal(weft_loop_run(l, WEFT_RUN_DEFAULT), 0);
    assert_int_equal(repeats, 5);
    assert_true(weft_now_ns() - t0 >= 14 * MS);
    assert_false(weft_timer_active(&t));
    weft_loop_destroy(l);
}

static void test_run_modes(void **state)
{
    (void)state;
    weft_loop_t *l = new_loop();
    weft_timer_t t;
    weft_timer_init(l, &t);
    weft_timer_start(&t, guard_fired, 10000 * MS, 0);
    uint64_t t0 = weft_now_ns();
    assert_int_equal(weft_loop_run(l, WEFT_RUN_NOWAIT), 1);
    assert_true(weft_now_ns() - t0 < 1000 * MS);
    weft_loop_stop(l);
    assert_int_equal(weft_loop_run(l, WEFT_RUN_DEFAULT), 1); /* stop made before run */
    weft_timer_stop(&t);
    assert_int_equal(weft_loop_run(l, WEFT_RUN_ONCE), 0);
    weft_loop_destroy(l);
}

/* ---- I/O watchers ------------------------------------------------------------- */

static int pipe_w;
static char got[16];
static void pipe_write_cb(weft_timer_t *t)
{
    (void)t;
    assert_int_equal(write(pipe_w, "hello", 5), 5);
}

static void pipe_read_cb(weft_io_t *io, unsigned ev)
{
    assert_true(ev & WEFT_IO_READ);
    assert_int_equal(read(io->fd, got, sizeof got), 5);
    weft_io_stop(io);
}

static void test_io_readiness(void **state)
{
    (void)state;
    weft_loop_t *l = new_loop();
    int p[2];
    assert_int_equal(pipe(p), 0);
    pipe_w = p[1];
    weft_io_t io;
    weft_timer_t t;
    assert_int_equal(weft_io_init(l, &io, p[0]), 0);
    assert_int_equal(weft_io_start(&io, WEFT_IO_READ, pipe_read_cb), 0);
    weft_timer_init(l, &t);
    weft_timer_start(&t, pipe_write_cb, 5 * MS, 0);
    assert_int_equal(weft_loop_run(l, WEFT_RUN_DEFAULT), 0);
    assert_memory_equal(got, "hello", 5);
    close(p[0]);
    close(p[1]);
    weft_loop_destroy(l);
}

/* ---- async ------------------------------------------------------------------------ */

enum { ASYNC_ROUNDS = 20000 };
static int async_sent; /* atomic: the sender's latest value */
static int async_seen;
static int async_calls;
static weft_async_t async_h;

static void async_cb(weft_async_t *a)
{
    async_calls++;
    async_seen = __atomic_load_n(&async_sent, __ATOMIC_ACQUIRE);
    if (async_seen == ASYNC_ROUNDS)
        weft_async_stop(a);
}

static void *async_sender(void *arg)
{
    (void)arg;
    for (int i = 1; i <= ASYNC_ROUNDS; i++) {
        __atomic_store_n(&async_sent, i, __ATOMIC_RELEASE);
        weft_async_send(&async_h);
        if (i % 64 == 0)
            sched_yield();
    }
    return NULL;
}

static void test_async_not_lost(void **state)
{
    (void)state;
    weft_loop_t *l = new_loop();
    weft_timer_t g;
    weft_async_init(l, &async_h);
    assert_int_equal(weft_async_start(&async_h, async_cb), 0);
    guard_start(l, &g);
    pthread_t th;
    pthread_create(&th, NULL, async_sender, NULL);
    while (async_seen != ASYNC_ROUNDS)
        weft_loop_run(l, WEFT_RUN_ONCE);
    pthread_join(th, NULL);
    assert_int_equal(async_seen, ASYNC_ROUNDS);
    assert_true(async_calls >= 1 && async_calls <= ASYNC_ROUNDS);
    weft_timer_stop(&g);
    weft_loop_destroy(l);
}

static int coalesced;
static void coalesce_cb(weft_async_t *a)
{
    (void)a;
    coalesced++;
}

static void test_async_coalesces(void **state)
{
    (void)state;
    weft_loop_t *l = new_loop();
    weft_async_t a;
    weft_async_init(l, &a);
    weft_async_start(&a, coalesce_cb);
    for (int i = 0; i < 100; i++)
        assert_int_equal(weft_async_send(&a), 0);
    assert_int_equal(weft_loop_run(l, WEFT_RUN_NOWAIT), 1);
    assert_int_equal(coalesced, 1);
    weft_loop_run(l, WEFT_RUN_NOWAIT);
    assert_int_equal(coalesced, 1);
    weft_async_send(&a);
    weft_loop_run(l, WEFT_RUN_ONCE);
    assert_int_equal(coalesced, 2);
    weft_async_stop(&a);
    weft_loop_destroy(l);
}

static void *stopper(void *arg)
{
    usleep(30000);
    weft_loop_stop(arg);
    return NULL;
}

static void tick(weft_timer_t *t)
{
    (void)t;
}

static void test_stop_from_other_thread(void **state)
{
    (void)state;
    weft_loop_t *l = new_loop();
    weft_timer_t t;
    weft_timer_init(l, &t);
    weft_timer_start(&t, tick, 1 * MS, 1 * MS);
    pthread_t th;
    pthread_create(&th, NULL, stopper, l);
    assert_int_equal(weft_loop_run(l, WEFT_RUN_DEFAULT), 1);
    pthread_join(th, NULL);
    weft_loop_stats_t st;
    weft_loop_stats(l, &st);
    assert_true(st.iterations >= 2);
    assert_int_equal(st.active_handles, 1);
    weft_loop_destroy(l); /* with t still active: detached */
}

/* ---- signals ------------------------------------------------------------------------ */

static int sig_got;
static void sig_cb(weft_signal_t *s, int signum)
{
    sig_got = signum;
    weft_signal_stop(s);
}

static void raise_cb(weft_timer_t *t)
{
    (void)t;
    kill(getpid(), SIGUSR1);
}

static void test_signal_arrives(void **state)
{
    (void)state;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    weft_loop_t *l = new_loop();
    weft_signal_t s;
    weft_timer_t t, g;
    weft_signal_init(l, &s);
    assert_int_equal(weft_signal_start(&s, sig_cb, SIGUSR1), 0);
    weft_timer_init(l, &t);
    weft_timer_start(&t, raise_cb, 2 * MS, 0);
    guard_start(l, &g);
    while (sig_got == 0)
        weft_loop_run(l, WEFT_RUN_ONCE);
    assert_int_equal(sig_got, SIGUSR1);
    weft_timer_stop(&g);
    assert_int_equal(weft_loop_run(l, WEFT_RUN_DEFAULT), 0);
    weft_loop_destroy(l);
}

/* ---- offload --------------------------------------------------------------------------- */

static uint32_t loop_tid;
static int offload_done;
static void *square(void *arg)
{
    assert_true(weft_thread_id() != loop_tid);
    uintptr_t x = (uintptr_t)arg;
    return (void *)(x * x);
}

static void square_done(weft_loop_t *l, void *arg, void *result, int status)
{
    (void)l;
    assert_int_equal(status, 0);
    assert_int_equal(weft_thread_id(), loop_tid);
    uintptr_t x = (uintptr_t)arg;
    assert_int_equal((uintptr_t)result, x * x);
    offload_done++;
}

static void test_offload_returns_on_loop(void **state)
{
    (void)state;
    loop_tid = weft_thread_id();
    weft_pool_t *pool;
    weft_pool_opts_t po = {.threads = 2};
    assert_int_equal(weft_pool_create(&pool, &po), 0);
    weft_loop_t *l = new_loop();
    for (uintptr_t i = 0; i < 200; i++)
        assert_int_equal(weft_loop_offload(l, pool, square, (void *)i, square_done), 0);
    assert_int_equal(weft_loop_run(l, WEFT_RUN_DEFAULT), 0);
    assert_int_equal(offload_done, 200);
    weft_loop_destroy(l);
    weft_pool_destroy(pool);
}

static void *slow(void *arg)
{
    usleep(2000);
    return arg;
}

static int settled_ok, settled_cancelled;
static void settle_done(weft_loop_t *l, void *arg, void *result, int status)
{
    (void)l;
    if (status == 0) {
        assert_ptr_equal(result, arg);
        settled_ok++;
    } else {
        assert_int_equal(status, -ECANCELED);
        settled_cancelled++;
    }
    free(arg);
}

static void try_destroy(weft_timer_t *t)
{
    assert_err(weft_loop_destroy(t->loop), -EBUSY);
}

static void test_destroy_with_work_pending(void **state)
{
    (void)state;
    weft_pool_t *pool;
    weft_pool_opts_t po = {.threads = 1};
    assert_int_equal(weft_pool_create(&pool, &po), 0);
    weft_loop_t *l = new_loop();
    for (int i = 0; i < 50; i++)
        assert_int_equal(weft_loop_offload(l, pool, slow, malloc(16), settle_done), 0);
    weft_timer_t t, busy;
    weft_timer_init(l, &t);
    weft_timer_start(&t, tick, 1000 * MS, 0);
    weft_timer_init(l, &busy);
    weft_timer_start(&busy, try_destroy, 0, 0);
    weft_loop_run(l, WEFT_RUN_NOWAIT);
    weft_async_t a;
    weft_async_init(l, &a);
    weft_async_start(&a, coalesce_cb);
    weft_async_send(&a);
    assert_int_equal(weft_loop_destroy(l), 0);
    assert_int_equal(settled_ok + settled_cancelled, 50);
    assert_true(settled_cancelled > 0);
    weft_pool_destroy(pool);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_create_and_args),
    cmocka_unit_test(test_timers_in_order_not_early),
    cmocka_unit_test(test_thousands_of_timers),
    cmocka_unit_test(test_repeating_timer),
    cmocka_unit_test(test_run_modes),
    cmocka_unit_test(test_io_readiness),
    cmocka_unit_test(test_async_not_lost),
    cmocka_unit_test(test_async_coalesces),
    cmocka_unit_test(test_stop_from_other_thread),
    cmocka_unit_test(test_signal_arrives),
    cmocka_unit_test(test_offload_returns_on_loop),
    cmocka_unit_test(test_destroy_with_work_pending),
};

WTEST_MAIN(tests)
