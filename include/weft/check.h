/*
 * weft/check.h - the hazard detectors: lock-order inversions (potential
 * deadlocks), actual deadlocks, ownership errors, semaphore permit leaks,
 * starvation and livelock. See docs/check.md for the report format.
 *
 * Checking is off by default and costs one predictable branch per lock
 * operation while off. It is switched on for a whole process by WEFT_CHECK=1
 * in the environment (read when libweft is loaded), by weft_check_enable(),
 * or for unmodified pthread programs by `weft check -- PROG ARGS`.
 *
 * Thread safety: every function here may be called from any thread.
 */
#ifndef WEFT_CHECK_H
#define WEFT_CHECK_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One report, as handed to a reporter callback. */
typedef struct weft_check_report {
    const char *kind;  /* "lock-order-inversion", "deadlock", "bad-unlock", ... */
    const char *title; /* the report's first line, e.g. "potential deadlock: ..." */
    const char *text;  /* the whole human-readable report, lines ending in '\n' */
    const char *json;  /* the same report as one JSON object (no newline) */
} weft_check_report_t;

typedef void (*weft_check_reporter_fn)(const weft_check_report_t *report, void *arg);

/*
 * Turn checking on for the rest of the process's life. Locks already held
 * when it is switched on are unknown to the detectors (no false reports come
 * from them). Returns 0.
 */
WEFT_API int weft_check_enable(void);
/* True while checking is on. */
WEFT_API bool weft_check_enabled(void);
/*
 * Send reports to fn instead of stderr (NULL restores stderr). fn runs in
 * the thread that found the problem, must not block on weft locks, and must
 * copy what it wants to keep. Returns 0.
 */
WEFT_API int weft_check_set_reporter(weft_check_reporter_fn fn, void *arg);
/* How many distinct problems have been reported so far. */
WEFT_API unsigned weft_check_report_count(void);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_CHECK_H */
