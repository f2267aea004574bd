/* Unit tests for weft_pool_t and weft_future_t. */
// ctest-timeout 30
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "weft.h"
#include "wtest.h"

#define SEC 1000000000ll

/* Spin-sleep until *flag reaches want, for at most 10 s (tests never hang). */
static bool wait_for(int *flag, int want)
{
    for (int i = 0; i < 10000; i++) {
        if (__atomic_load_n(flag, __ATOMIC_ACQUIRE) >= want)
            return true;
        usleep(1000);
    }
    return false;
}

static void *add_one(void *arg)
{
    __atomic_fetch_add((int *)arg, 1, __ATOMIC_RELAXED);
    return NULL;
}

static void *square(void *arg)
{
    uintptr_t x = (uintptr_t)arg;
    return (void *)(x * x);
}

/* Blocks its worker until *gate is opened. */
static int gate_open;
static int gate_entered;
static void *gate_task(void *arg)
{
    (void)arg;
    __atomic_fetch_add(&gate_entered, 1, __ATOMIC_RELEASE);
    wait_for(&gate_open, 1);
    return (void *)7;
}

static void gate_reset(void)
{
    __atomic_store_n(&gate_open, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&gate_entered, 0, __ATOMIC_RELAXED);
}

static void test_create_defaults_and_invalid(void **state)
{
    (void)state;
    weft_pool_t *p = NULL;
    assert_err(weft_pool_create(NULL, NULL), -EINVAL);
    weft_pool_opts_t bad = {.on_full = (weft_reject_t)9};
    assert_err(weft_pool_create(&p, &bad), -EINVAL);
    assert_null(p);
    assert_err(weft_pool_create(&p, NULL), 0);
    assert_string_equal(weft_pool_name(p), "pool");
    weft_pool_stats_t st;
    assert_err(weft_pool_stats(p, &st), 0);
    assert_int_equal(st.threads, weft_cpu_count());
    assert_err(weft_pool_submit(NULL, add_one, NULL, NULL), -EINVAL);
    assert_err(weft_pool_submit(p, NULL, NULL, NULL), -EINVAL);
    assert_err(weft_pool_submit_timed(p, add_one, NULL, NULL, -5), -EINVAL);
    assert_err(weft_future_wait(NULL, 0, NULL), -EINVAL);
    assert_err(weft_future_cancel(NULL), -EINVAL);
    assert_err(weft_pool_stats(NULL, &st), -EINVAL);
    assert_err(weft_pool_destroy(NULL), -EINVAL);
    weft_future_release(NULL);
    assert_null(weft_pool_current());
    assert_err(weft_pool_destroy(p), 0);
}

/* 100k tasks: every result is right, every task without a future ran. */
static void test_results_100k(void **state)
{
    (void)state;
    enum { N = 100000, WITH_FUTURE = 20000 };
    weft_pool_t *p;
    weft_pool_opts_t o = {.name = "results", .threads = 3};
    assert_err(weft_pool_create(&p, &o), 0);
    weft_future_t **fs = calloc(WITH_FUTURE, sizeof *fs);
    int count = 0;
    for (int i = 0; i < N; i++) {
        if (i < WITH_FUTURE)
            assert_err(weft_pool_submit(p, square, (void *)(uintptr_t)i, &fs[i]), 0);
        else
            assert_err(weft_pool_submit(p, add_one, &count, NULL), 0);
    }
    for (int i = 0; i < WITH_FUTURE; i++) {
        void *r = NULL;
        assert_err(weft_future_wait(fs[i], 10 * SEC, &r), 0);
        assert_int_equal((uintptr_t)r, (uintptr_t)i * (uintptr_t)i);
        weft_future_release(fs[i]);
    }
    assert_err(weft_pool_destroy(p), 0);
    assert_int_equal(count, N - WITH_FUTURE);
    free(fs);
}

static void test_stats(void **state)
{
    (void)state;
    weft_pool_t *p;
    weft_pool_opts_t o = {.name = "stats", .threads = 1};
    assert_err(weft_pool_create(&p, &o), 0);
    gate_reset();
    weft_future_t *g;
    assert_err(weft_pool_submit(p, gate_task, NULL, &g), 0);
    assert_true(wait_for(&gate_entered, 1));
    int count = 0;
    for (int i = 0; i < 5; i++)
        assert_err(weft_pool_submit(p, add_one, &count, NULL), 0);
    weft_pool_stats_t st;
    assert_err(weft_pool_stats(p, &st), 0);
    assert_string_equal(st.name, "stats");
    assert_int_equal(st.running, 1);
    assert_int_equal(st.queued, 5);
    usleep(20000);
    __atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
    assert_err(weft_future_wait(g, 10 * SEC, NULL), 0);
    weft_future_release(g);
    assert_err(weft_pool_destroy_timed(p, 10 * SEC), 0);
    assert_int_equal(count, 5);
}

static void test_stats_after_work(void **state)
{
    (void)state;
    weft_pool_t *p;
    weft_pool_opts_t o = {.name = "stats2", .threads = 1};
    assert_err(weft_pool_create(&p, &o), 0);
    gate_reset();
    weft_future_t *g;
    assert_err(weft_pool_submit(p, gate_task, NULL, &g), 0);
    assert_true(wait_for(&gate_entered, 1));
    int count = 0;
    assert_err(weft_pool_submit(p, add_one, &count, NULL), 0);
    usleep(20000); /* the queued task waits at least this long */
    __atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
    weft_future_t *f;
    assert_err(weft_pool_submit(p, square, (void *)3, &f), 0);
    assert_err(weft_future_wait(f, 10 * SEC, NULL), 0);
    weft_pool_stats_t st;
    assert_err(weft_pool_stats(p, &st), 0);
    assert_int_equal(st.completed, 3);
    assert_int_equal(st.submitted, 3);
    assert_int_equal(st.queued, 0);
    assert_true(st.max_queue_wait_ns >= 20000000u);
    weft_future_release(f);
    weft_future_release(g);
    assert_err(weft_pool_destroy(p), 0);
}

/* Fills a one-worker pool: the worker is held at the gate, `cap` tasks queue. */
static weft_pool_t *full_pool(weft_reject_t mode, size_t cap, weft_future_t **g, int *count)
{
    weft_pool_t *p;
    weft_pool_opts_t o = {.name = "bounded", .threads = 1, .queue_capacity = cap, .on_full = mode};
    assert_err(weft_pool_create(&p, &o), 0);
    gate_reset();
    assert_err(weft_pool_submit(p, gate_task, NULL, g), 0);
    assert_true(wait_for(&gate_entered, 1));
    for (size_t i = 0; i < cap; i++)
        assert_err(weft_pool_submit(p, add_one, count, NULL), 0);
    return p;
}

static void finish_full_pool(weft_pool_t *p, weft_future_t *g)
{
    __atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
    assert_err(weft_future_wait(g, 10 * SEC, NULL), 0);
    weft_future_release(g);
    assert_err(weft_pool_destroy(p), 0);
}

static void test_bounded_reject(void **state)
{
    (void)state;
    weft_future_t *g;
    int count = 0;
    weft_pool_t *p = full_pool(WEFT_REJECT_ERROR, 4, &g, &count);
    weft_future_t *f = (weft_future_t *)&count;
    assert_err(weft_pool_submit(p, add_one, &count, &f), -EAGAIN);
    assert_null(f);
    assert_err(weft_pool_submit(p, add_one, &count, NULL), -EAGAIN);
    weft_pool_stats_t st;
    assert_err(weft_pool_stats(p, &st), 0);
    assert_int_equal(st.rejected, 2);
    finish_full_pool(p, g);
    assert_int_equal(count, 4);
}

static void *unblock_later(void *arg)
{
    (void)arg;
    usleep(50000);
    __atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void test_bounded_block(void **state)
{
    (void)state;
    weft_future_t *g;
    int count = 0;
    weft_pool_t *p = full_pool(WEFT_REJECT_BLOCK, 2, &g, &count);
    uint64_t t0 = weft_now_ns();
    assert_err(weft_pool_submit_timed(p, add_one, &count, NULL, 30000000), -ETIMEDOUT);
    assert_true(weft_now_ns() - t0 >= 30000000u);
    assert_err(weft_pool_submit_timed(p, add_one, &count, NULL, 0), -EAGAIN);
    pthread_t t;
    pthread_create(&t, NULL, unblock_later, NULL);
    /* Blocks until the worker is released and makes room. */
    assert_err(weft_pool_submit_timed(p, add_one, &count, NULL, 10 * SEC), 0);
    pthread_join(t, NULL);
    finish_full_pool(p, g);
    assert_int_equal(count, 3);
}

static void *whoami(void *arg)
{
    (void)arg;
    return (void *)(uintptr_t)weft_thread_id();
}

static void test_bounded_caller_runs(void **state)
{
    (void)state;
    weft_future_t *g;
    int count = 0;
    weft_pool_t *p = full_pool(WEFT_REJECT_CALLER_RUNS, 3, &g, &count);
    weft_future_t *f;
    assert_err(weft_pool_submit(p, whoami, NULL, &f), 0);
    assert_true(weft_future_ready(f));
    void *r;
    assert_err(weft_future_wait(f, 0, &r), 0);
    assert_int_equal((uintptr_t)r, weft_thread_id());
    weft_future_release(f);
    assert_err(weft_pool_submit(p, add_one, &count, NULL), 0);
    assert_int_equal(count, 1); /* ran here, synchronously */
    weft_pool_stats_t st;
    assert_err(weft_pool_stats(p, &st), 0);
    assert_int_equal(st.caller_runs, 2);
    finish_full_pool(p, g);
    assert_int_equal(count, 4);
}

static void test_cancel(void **state)
{
    (void)state;
    weft_pool_t *p;
    weft_pool_opts_t o = {.threads = 1};
    assert_err(weft_pool_create(&p, &o), 0);
    gate_reset();
    weft_future_t *g, *f;
    int count = 0;
    assert_err(weft_pool_submit(p, gate_task, NULL, &g), 0);
    assert_true(wait_for(&gate_entered, 1));
    assert_err(weft_pool_submit(p, add_one, &count, &f), 0);
    assert_err(weft_future_cancel(f), 0);
    assert_err(weft_future_cancel(f), 0); /* idempotent */
    assert_err(weft_future_wait(f, 0, NULL), -ECANCELED);
    assert_err(weft_future_cancel(g), -EBUSY); /* running */
    assert_err(weft_future_wait(g, 1000000, NULL), -ETIMEDOUT);
    __atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
    void *r;
    assert_err(weft_future_wait(g, 10 * SEC, &r), 0);
    assert_int_equal((uintptr_t)r, 7);
    assert_err(weft_future_cancel(g), -EBUSY); /* done */
    assert_err(weft_pool_destroy(p), 0);
    assert_int_equal(count, 0); /* the cancelled task never ran */
    weft_pool_stats_t st;
    (void)st;
    weft_future_release(f);
    weft_future_release(g);
}

/* Destroy with work queued: everything queued runs, then destroy returns. */
static void test_destroy_runs_queued(void **state)
{
    (void)state;
    weft_pool_t *p;
    weft_pool_opts_t o = {.threads = 2};
    assert_err(weft_pool_create(&p, &o), 0);
    gate_reset();
    weft_future_t *g1, *g2, *f;
    assert_err(weft_pool_submit(p, gate_task, NULL, &g1), 0);
    assert_err(weft_pool_submit(p, gate_task, NULL, &g2), 0);
    assert_true(wait_for(&gate_entered, 2));
    int count = 0;
    for (int i = 0; i < 1000; i++)
        assert_err(weft_pool_submit(p, add_one, &count, NULL), 0);
    assert_err(weft_pool_submit(p, square, (void *)5, &f), 0);
    pthread_t t;
    pthread_create(&t, NULL, unblock_later, NULL);
    assert_err(weft_pool_destroy(p), 0);
    pthread_join(t, NULL);
    assert_int_equal(count, 1000);
    void *r;
    assert_err(weft_future_wait(f, 0, &r), 0); /* futures outlive the pool */
    assert_int_equal((uintptr_t)r, 25);
    weft_future_release(f);
    weft_future_release(g1);
    weft_future_release(g2);
}

static void test_destroy_timed(void **state)
{
    (void)state;
    weft_pool_t *p;
    weft_pool_opts_t o = {.threads = 1};
    assert_err(weft_pool_create(&p, &o), 0);
    gate_reset();
    assert_err(weft_pool_submit(p, gate_task, NULL, NULL), 0);
    assert_true(wait_for(&gate_entered, 1));
    assert_err(weft_pool_destroy_timed(p, 20000000), -ETIMEDOUT);
    int count = 0;
    assert_err(weft_pool_submit(p, add_one, &count, NULL), -ESHUTDOWN);
    __atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
    assert_err(weft_pool_destroy_timed(p, 10 * SEC), 0);
    assert_int_equal(count, 0);
}

static void *destroy_own_pool(void *arg)
{
    return (void *)(intptr_t)weft_pool_destroy((weft_pool_t *)arg);
}

static void test_destroy_from_worker(void **state)
{
    (void)state;
    weft_pool_t *p;
    assert_err(weft_pool_create(&p, NULL), 0);
    weft_future_t *f;
    assert_err(weft_pool_submit(p, destroy_own_pool, p, &f), 0);
    void *r;
    assert_err(weft_future_wait(f, 10 * SEC, &r), 0);
    assert_int_equal((intptr_t)r, -EDEADLK);
    weft_future_release(f);
    assert_err(weft_pool_destroy(p), 0);
}

static void *current_pool(void *arg)
{
    (void)arg;
    return weft_pool_current();
}

static void test_current(void **state)
{
    (void)state;
    weft_pool_t *p;
    assert_err(weft_pool_create(&p, NULL), 0);
    weft_future_t *f;
    assert_err(weft_pool_submit(p, current_pool, NULL, &f), 0);
    void *r;
    assert_err(weft_future_wait(f, 10 * SEC, &r), 0);
    assert_ptr_equal(r, p);
    weft_future_release(f);
    assert_err(weft_pool_destroy(p), 0);
}

/* ---- bulkheads ------------------------------------------------------------ */

/* A flood of blocking work in one pool (gate tasks, which block until the
 * test opens the gate, like DNS lookups that hang) does not delay another
 * pool's work. */
static void test_bulkhead(void **state)
{
    (void)state;
    weft_pool_t *io, *cpu;
    weft_pool_opts_t oi = {.name = "dns", .threads = 2};
    weft_pool_opts_t oc = {.name = "cpu", .threads = 2};
    assert_err(weft_pool_create(&io, &oi), 0);
    assert_err(weft_pool_create(&cpu, &oc), 0);
    gate_reset();
    for (int i = 0; i < 10; i++)
        assert_err(weft_pool_submit(io, gate_task, NULL, NULL), 0);
    assert_true(wait_for(&gate_entered, 2)); /* both dns workers are stuck */
    weft_future_t *f;
    assert_err(weft_pool_submit(cpu, square, (void *)9, &f), 0);
    void *r;
    /* The cpu pool's task completes while every dns worker is still blocked
     * and eight dns tasks wait behind them. */
    assert_err(weft_future_wait(f, 10 * SEC, &r), 0);
    assert_int_equal((uintptr_t)r, 81);
    weft_future_release(f);
    weft_pool_stats_t st;
    assert_err(weft_pool_stats(io, &st), 0);
    assert_int_equal(st.running, 2);
    assert_int_equal(st.queued, 8);
    assert_int_equal(__atomic_load_n(&gate_entered, __ATOMIC_ACQUIRE), 2);
    __atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
    assert_err(weft_pool_destroy(cpu), 0);
    assert_err(weft_pool_destroy(io), 0);
    assert_int_equal(gate_entered, 10);
}

/* ---- pool-induced deadlock ------------------------------------------------ */

typedef struct nest {
    weft_pool_t *outer, *inner;
    int started;     /* outer tasks running */
    int want;        /* outer tasks to wait for before submitting children */
    int deadlocks;   /* waits that returned -EDEADLK */
    int children_ok; /* children whose result arrived */
} nest_t;

static void *child_task(void *arg)
{
    return (void *)((uintptr_t)arg + 1);
}

/* Waits (up to 10 s) until `want` outer tasks run, then submits a child to
 * the inner pool and waits for it. */
static void *outer_task(void *arg)
{
    nest_t *n = arg;
    __atomic_fetch_add(&n->started, 1, __ATOMIC_ACQ_REL);
    if (!wait_for(&n->started, n->want))
        return (void *)-1;
    weft_future_t *f;
    if (WEFT_POOL_SUBMIT(n->inner, child_task, (void *)41, &f) != 0)
        return (void *)-2;
    void *r = NULL;
    int e = weft_future_wait(f, WEFT_FOREVER, &r);
    if (e == -EDEADLK) {
        __atomic_fetch_add(&n->deadlocks, 1, __ATOMIC_RELAXED);
        e = 0;
        r = (void *)42; /* the child still runs once this worker is free */
    } else if (e == 0 && (uintptr_t)r == 42) {
        __atomic_fetch_add(&n->children_ok, 1, __ATOMIC_RELAXED);
    }
    weft_future_release(f);
    return e == 0 && (uintptr_t)r == 42 ? NULL : (void *)-3;
}

/* Run `threads` outer tasks that each wait on a child; return seconds taken. */
static double run_nested(nest_t *n, unsigned threads)
{
    n->want = (int)threads;
    weft_future_t *fs[8];
    uint64_t t0 = weft_now_ns();
    for (unsigned i = 0; i < threads; i++)
        assert_err(WEFT_POOL_SUBMIT(n->outer, outer_task, n, &fs[i]), 0);
    for (unsigned i = 0; i < threads; i++) {
        void *r = (void *)1;
        assert_err(weft_future_wait(fs[i], 10 * SEC, &r), 0);
        assert_null(r);
        weft_future_release(fs[i]);
    }
    return (double)(weft_now_ns() - t0) / 1e9;
}

static void test_deadlock_detected(void **state)
{
    (void)state;
    for (unsigned threads = 1; threads <= 3; threads++) {
        weft_pool_t *p;
        weft_pool_opts_t o = {.name = "nested", .threads = threads};
        assert_err(weft_pool_create(&p, &o), 0);
        nest_t n = {.outer = p, .inner = p};
        double secs = run_nested(&n, threads);
        assert_true(secs < 1.0);
        assert_true(n.deadlocks >= 1);
        weft_pool_stats_t st;
        assert_err(weft_pool_stats(p, &st), 0);
        assert_int_equal(st.deadlocks, (uint64_t)n.deadlocks);
        assert_err(weft_pool_destroy(p), 0);
    }
}

static void test_deadlock_inline_mode_completes(void **state)
{
    (void)state;
    weft_pool_t *p;
    weft_pool_opts_t o = {.name = "forkjoin", .threads = 2, .wait_runs_inline = true};
    assert_err(weft_pool_create(&p, &o), 0);
    nest_t n = {.outer = p, .inner = p};
    assert_true(run_nested(&n, 2) < 1.0);
    assert_int_equal(n.deadlocks, 0);
    assert_int_equal(n.children_ok, 2);
    weft_pool_stats_t st;
    assert_err(weft_pool_stats(p, &st), 0);
    /* At least one child ran inline; the other may have been stolen by a
     * worker whose own outer task had already finished. */
    assert_true(st.inline_runs >= 1 && st.inline_runs <= 2);
    assert_int_equal(st.deadlocks, 0);
    assert_err(weft_pool_destroy(p), 0);
}

static void test_deadlock_two_pools_complete(void **state)
{
    (void)state;
    weft_pool_t *a, *b;
    weft_pool_opts_t oa = {.name = "requests", .threads = 2};
    weft_pool_opts_t ob = {.name = "lookups", .threads = 2};
    assert_err(weft_pool_create(&a, &oa), 0);
    assert_err(weft_pool_create(&b, &ob), 0);
    nest_t n = {.outer = a, .inner = b};
    assert_true(run_nested(&n, 2) < 1.0);
    assert_int_equal(n.deadlocks, 0);
    assert_int_equal(n.children_ok, 2);
    assert_err(weft_pool_destroy(a), 0);
    assert_err(weft_pool_destroy(b), 0);
}

/* A task that waits on its own future: a cycle, caught even though another
 * worker is free. */
static weft_future_t *self_future;
static void *wait_on_self(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10000 && __atomic_load_n(&self_future, __ATOMIC_ACQUIRE) == NULL; i++)
        usleep(100);
    weft_future_t *f = __atomic_load_n(&self_future, __ATOMIC_ACQUIRE);
    if (f == NULL)
        return (void *)-1;
    return (void *)(intptr_t)weft_future_wait(f, 10 * SEC, NULL);
}

static void test_self_wait_detected(void **state)
{
    (void)state;
    for (int inl = 0; inl < 2; inl++) {
        weft_pool_t *p;
        weft_pool_opts_t o = {.name = "selfish", .threads = 2, .wait_runs_inline = inl};
        assert_err(weft_pool_create(&p, &o), 0);
        weft_future_t *f;
        __atomic_store_n(&self_future, NULL, __ATOMIC_RELEASE);
        assert_err(weft_pool_submit(p, wait_on_self, NULL, &f), 0);
        __atomic_store_n(&self_future, f, __ATOMIC_RELEASE);
        void *r = NULL;
        uint64_t t0 = weft_now_ns();
        assert_err(weft_future_wait(f, 10 * SEC, &r), 0);
        assert_true(weft_now_ns() - t0 < SEC);
        assert_int_equal((intptr_t)r, -EDEADLK);
        weft_future_release(f);
        assert_err(weft_pool_destroy(p), 0);
    }
}

/* With WEFT_CHECK set, the report names the pool, the tasks and the sites. */
static void test_deadlock_report(void **state)
{
    (void)state;
    setenv("WEFT_CHECK", "1", 1);
    int fd = memfd_create("report", 0);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    weft_pool_t *p;
    weft_pool_opts_t o = {.name = "reported", .threads = 1};
    int r = weft_pool_create(&p, &o);
    unsetenv("WEFT_CHECK");
    nest_t n = {.outer = p, .inner = p};
    if (r == 0)
        run_nested(&n, 1);
    dup2(saved, STDERR_FILENO);
    close(saved);
    assert_err(r, 0);
    assert_err(weft_pool_destroy(p), 0);
    char buf[8192] = {0};
    ssize_t len = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    assert_true(len > 0);
    fputs(buf, stderr); /* show it in the test log */
    assert_non_null(strstr(buf, "pool-induced deadlock in pool 'reported'"));
    assert_non_null(strstr(buf, "test_pool.c:"));
    assert_non_null(strstr(buf, "in outer_task()"));
    assert_non_null(strstr(buf, "in run_nested()"));
    assert_non_null(strstr(buf, "[queued]"));
    assert_non_null(strstr(buf, "waits on child_task()")); /* named by the symboliser */
    assert_non_null(strstr(buf, "runs outer_task()"));
    assert_non_null(strstr(buf, "*** DEADLOCK ***"));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_create_defaults_and_invalid),
    cmocka_unit_test(test_results_100k),
    cmocka_unit_test(test_stats),
    cmocka_unit_test(test_stats_after_work),
    cmocka_unit_test(test_bounded_reject),
    cmocka_unit_test(test_bounded_block),
    cmocka_unit_test(test_bounded_caller_runs),
    cmocka_unit_test(test_cancel),
    cmocka_unit_test(test_destroy_runs_queued),
    cmocka_unit_test(test_destroy_timed),
    cmocka_unit_test(test_destroy_from_worker),
    cmocka_unit_test(test_current),
    cmocka_unit_test(test_bulkhead),
    cmocka_unit_test(test_deadlock_detected),
    cmocka_unit_test(test_deadlock_inline_mode_completes),
    cmocka_unit_test(test_deadlock_two_pools_complete),
    cmocka_unit_test(test_deadlock_report),
    cmocka_unit_test(test_self_wait_detected),
};

WTEST_MAIN(tests)
