/* Tests of the loop's stall watchdog: a deliberately blocking callback
 * produces exactly one report that names it. */
// ctest-timeout 20
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "weft.h"
#include "wtest.h"

#define MS 1000000ull

static char reports[4][4096];
static int nreports;

static void capture(const char *text, void *arg)
{
    (void)arg;
    if (nreports < 4)
        snprintf(reports[nreports], sizeof reports[0], "%s", text);
    nreports++;
}

/* Sleeps 250 ms in total, resuming after the watchdog's signal. */
void weft_test_blocking_callback(weft_timer_t *t);
void weft_test_blocking_callback(weft_timer_t *t)
{
    (void)t;
    uint64_t end = weft_now_ns() + 250 * MS;
    for (uint64_t now; (now = weft_now_ns()) < end;) {
        struct timespec ts = {0, (long)(end - now)};
        nanosleep(&ts, NULL);
    }
}

/* Burns CPU for 200 ms. */
void weft_test_spinning_callback(weft_timer_t *t);
void weft_test_spinning_callback(weft_timer_t *t)
{
    (void)t;
    uint64_t end = weft_now_ns() + 200 * MS;
    while (weft_now_ns() < end)
        ;
}

static void quick(weft_timer_t *t)
{
    (void)t;
}

static weft_loop_t *watched_loop(void)
{
    weft_loop_opts_t o = {.name = "watched",
                          .stall_threshold_ns = 50 * MS,
                          .stall_interval_ns = 1,
                          .on_stall = capture};
    weft_loop_t *l;
    assert_int_equal(weft_loop_create(&l, &o), 0);
    return l;
}

static void run_one(weft_loop_t *l, weft_timer_cb cb)
{
    weft_timer_t a, b, c;
    weft_timer_init(l, &a);
    weft_timer_init(l, &b);
    weft_timer_init(l, &c);
    weft_timer_start(&a, quick, 1 * MS, 0);
    weft_timer_start(&b, cb, 2 * MS, 0);
    weft_timer_start(&c, quick, 3 * MS, 0);
    assert_int_equal(weft_loop_run(l, WEFT_RUN_DEFAULT), 0);
}

static void test_blocking_callback_reported_once(void **state)
{
    (void)state;
    weft_loop_t *l = watched_loop();
    run_one(l, weft_test_blocking_callback);
    weft_loop_stats_t st;
    weft_loop_stats(l, &st);
    /* Destroy joins the watchdog thread, so a report in progress is done. */
    assert_int_equal(weft_loop_destroy(l), 0);
    assert_int_equal(nreports, 1);
    fputs(reports[0], stderr);
    assert_non_null(strstr(reports[0], "weft_test_blocking_callback"));
    assert_non_null(strstr(reports[0], "\"watched\""));
    assert_non_null(strstr(reports[0], "blocked in a system call"));
    assert_non_null(strstr(reports[0], "nanosleep"));
    /* The stack sampled on the loop thread shows the callback too. */
    const char *stack = strstr(reports[0], "stack of the loop thread");
    assert_non_null(stack);
    assert_non_null(strstr(stack, "weft_test_blocking_callback"));
    assert_int_equal(st.stalls, 1);
    assert_int_equal(st.stall_reports, 1);
    assert_true(st.cb_max_ns >= 250 * MS);
    uint64_t total = 0;
    for (int i = 0; i < WEFT_LOOP_HIST_BUCKETS; i++)
        total += st.cb_hist[i];
    assert_int_equal(total, st.callbacks);
}

static void test_spinning_callback_on_cpu(void **state)
{
    (void)state;
    weft_loop_t *l = watched_loop();
    run_one(l, weft_test_spinning_callback);
    assert_int_equal(weft_loop_destroy(l), 0);
    assert_int_equal(nreports, 1);
    fputs(reports[0], stderr);
    assert_non_null(strstr(reports[0], "weft_test_spinning_callback"));
    assert_non_null(strstr(reports[0], "on CPU"));
}

static void test_rate_limited(void **state)
{
    (void)state;
    weft_loop_opts_t o = {
        .stall_threshold_ns = 20 * MS, .stall_interval_ns = 10000 * MS, .on_stall = capture};
    weft_loop_t *l;
    assert_int_equal(weft_loop_create(&l, &o), 0);
    weft_timer_t a, b;
    weft_timer_init(l, &a);
    weft_timer_init(l, &b);
    weft_timer_start(&a, weft_test_spinning_callback, 1 * MS, 0);
    weft_timer_start(&b, weft_test_spinning_callback, 2 * MS, 0);
    assert_int_equal(weft_loop_run(l, WEFT_RUN_DEFAULT), 0);
    weft_loop_stats_t st;
    weft_loop_stats(l, &st);
    assert_int_equal(st.stalls, 2);
    assert_int_equal(st.stall_reports, 1);
    assert_int_equal(weft_loop_destroy(l), 0);
    assert_int_equal(nreports, 1);
}

static void test_no_report_without_stall(void **state)
{
    (void)state;
    weft_loop_t *l = watched_loop();
    run_one(l, quick);
    assert_int_equal(weft_loop_destroy(l), 0);
    assert_int_equal(nreports, 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_blocking_callback_reported_once),
    cmocka_unit_test(test_spinning_callback_on_cpu),
    cmocka_unit_test(test_rate_limited),
    cmocka_unit_test(test_no_report_without_stall),
};

WTEST_MAIN(tests)
