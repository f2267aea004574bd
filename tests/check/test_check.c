/* Unit tests for the check layer's public API: enabling, the reporter
 * callback, the report count, and reporting each problem once. The tests
 * invert lock orders on purpose: ThreadSanitizer's own deadlock detector
 * is switched off for them (weft's is the one under test). */
// ctest-env TSAN_OPTIONS=detect_deadlocks=0
#include <pthread.h>
#include <stdlib.h>

#include "weft.h"
#include "wtest.h"

static int got;
static char kind[64], title[128];
static int json_ok, text_ok;

static void reporter(const weft_check_report_t *r, void *arg)
{
    (void)arg;
    got++;
    snprintf(kind, sizeof kind, "%s", r->kind);
    snprintf(title, sizeof title, "%s", r->title);
    json_ok = r->json[0] == '{' && r->json[strlen(r->json) - 1] == '}' &&
              strstr(r->json, "\"kind\":\"lock-order-inversion\"") != NULL;
    text_ok = strstr(r->text, "chain: ") != NULL && strstr(r->text, "DEADLOCK") != NULL;
}

static weft_mutex_t A = WEFT_MUTEX_INIT("A");
static weft_mutex_t B = WEFT_MUTEX_INIT("B");

static void *ab(void *x)
{
    weft_mutex_lock(&A);
    weft_mutex_lock(&B);
    weft_mutex_unlock(&B);
    weft_mutex_unlock(&A);
    return x;
}

static void ba(void)
{
    weft_mutex_lock(&B);
    weft_mutex_lock(&A);
    weft_mutex_unlock(&A);
    weft_mutex_unlock(&B);
}

static void test_reporter_gets_inversion_once(void **state)
{
    (void)state;
    assert_int_equal(weft_check_enable(), 0);
    assert_true(weft_check_enabled());
    assert_int_equal(weft_check_set_reporter(reporter, NULL), 0);
    unsigned before = weft_check_report_count();
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, ab, NULL), 0);
    pthread_join(t, NULL);
    ba();
    assert_int_equal(got, 1);
    assert_string_equal(kind, "lock-order-inversion");
    assert_non_null(strstr(title, "potential deadlock"));
    assert_true(json_ok);
    assert_true(text_ok);
    assert_int_equal(weft_check_report_count(), before + 1);
    /* The same inversion again is not reported again. */
    assert_int_equal(pthread_create(&t, NULL, ab, NULL), 0);
    pthread_join(t, NULL);
    ba();
    assert_int_equal(got, 1);
    assert_int_equal(weft_check_set_reporter(NULL, NULL), 0);
}

static void test_consistent_order_is_silent(void **state)
{
    (void)state;
    weft_check_enable();
    weft_check_set_reporter(reporter, NULL);
    got = 0;
    weft_mutex_t m[4];
    for (int i = 0; i < 4; i++)
        weft_mutex_init(&m[i], "ordered");
    for (int round = 0; round < 100; round++)
        for (int i = 0; i < 3; i++) {
            weft_mutex_lock(&m[i]);
            weft_mutex_lock(&m[i + 1]);
            weft_mutex_unlock(&m[i + 1]);
            weft_mutex_unlock(&m[i]);
        }
    assert_int_equal(got, 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(weft_mutex_destroy(&m[i]), 0);
    weft_check_set_reporter(NULL, NULL);
}

/* Releasing out of LIFO order must really forget the released lock: if x
 * stayed on the held stack, taking w afterwards would record x -> w, and
 * w -> x later would be reported as an inversion that never existed. */
static void test_unlock_order_not_lifo(void **state)
{
    (void)state;
    weft_check_enable();
    weft_check_set_reporter(reporter, NULL);
    got = 0;
    weft_mutex_t x, y, w;
    weft_mutex_init(&x, "x");
    weft_mutex_init(&y, "y");
    weft_mutex_init(&w, "w");
    weft_mutex_lock(&x);
    weft_mutex_lock(&y);
    assert_int_equal(weft_mutex_unlock(&x), 0); /* not the most recent */
    assert_int_equal(weft_mutex_unlock(&y), 0);
    weft_mutex_lock(&w);
    weft_mutex_unlock(&w);
    weft_mutex_lock(&w);
    weft_mutex_lock(&x);
    weft_mutex_unlock(&x);
    weft_mutex_unlock(&w);
    assert_int_equal(got, 0);
    weft_check_set_reporter(NULL, NULL);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_reporter_gets_inversion_once),
    cmocka_unit_test(test_consistent_order_is_silent),
    cmocka_unit_test(test_unlock_order_not_lifo),
};

WTEST_MAIN(tests)
