/*
 * wtest.h - what every weft test file shares.
 *
 * Unit tests use cmocka. A test file ends with
 *
 *     static const struct CMUnitTest tests[] = { cmocka_unit_test(test_a), ... };
 *     WTEST_MAIN(tests)
 *
 * and CTest runs each case as `exe test_a` in its own process (see
 * cmake/WeftTests.cmake). Run with no argument, every case runs in turn.
 * A name that matches no case is an error, so a typo cannot pass.
 */
#ifndef WEFT_TESTS_WTEST_H
#define WEFT_TESTS_WTEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define WTEST_MAIN(tests)                                                             \
    int main(int argc, char **argv)                                                   \
    {                                                                                 \
        size_t n_ = sizeof(tests) / sizeof((tests)[0]);                               \
        if (argc > 1) {                                                               \
            for (size_t i_ = 0; i_ < n_; i_++)                                        \
                if (strcmp((tests)[i_].name, argv[1]) == 0)                           \
                    return _cmocka_run_group_tests(argv[1], &(tests)[i_], 1, NULL,    \
                                                   NULL);                             \
            fprintf(stderr, "%s: no test case named '%s'\n", argv[0], argv[1]);       \
            return 2;                                                                 \
        }                                                                             \
        return cmocka_run_group_tests(tests, NULL, NULL);                             \
    }

/* Assert that an expression returns the given (negative errno) code. */
#define assert_err(expr, code) assert_int_equal((expr), (code))

#endif /* WEFT_TESTS_WTEST_H */
