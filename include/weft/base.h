/*
 * weft/base.h - conventions shared by every part of weft.
 *
 * Errors: every function that can fail returns 0 (or a non-negative value
 * where documented) on success and a negative errno on failure, for example
 * -EINVAL, -EBUSY, -ETIMEDOUT, -EDEADLK, -EPERM. weft_strerror() names each.
 *
 * Timeouts: every blocking call has a variant taking `int64_t timeout_ns`,
 * a relative timeout in nanoseconds measured on CLOCK_MONOTONIC. WEFT_FOREVER
 * waits without limit; 0 means "try once, do not wait"; any other negative
 * value is rejected with -EINVAL.
 *
 * Thread safety: every function in this header may be called from any thread
 * at any time.
 */
#ifndef WEFT_BASE_H
#define WEFT_BASE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0
#define WEFT_VERSION_STRING "0.1.0"

/* A timeout that never expires. */
#define WEFT_FOREVER ((int64_t)-1)

/* Symbols the shared library exports. */
#if defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

/*
 * Clang's thread-safety analysis (-Wthread-safety). The attributes expand to
 * nothing on other compilers, so user code can use them unconditionally:
 *
 *     static weft_mutex_t lock = WEFT_MUTEX_INIT("counter");
 *     static long counter WEFT_GUARDED_BY(lock);
 */
#if defined(__clang__) && !defined(SWIG)
#define WEFT__TSA(x) __attribute__((x))
#else
#define WEFT__TSA(x)
#endif
#define WEFT_CAPABILITY(x) WEFT__TSA(capability(x))
#define WEFT_GUARDED_BY(x) WEFT__TSA(guarded_by(x))
#define WEFT_PT_GUARDED_BY(x) WEFT__TSA(pt_guarded_by(x))
#define WEFT_ACQUIRE(...) WEFT__TSA(acquire_capability(__VA_ARGS__))
#define WEFT_ACQUIRE_SHARED(...) WEFT__TSA(acquire_shared_capability(__VA_ARGS__))
#define WEFT_RELEASE(...) WEFT__TSA(release_capability(__VA_ARGS__))
#define WEFT_RELEASE_SHARED(...) WEFT__TSA(release_shared_capability(__VA_ARGS__))
#define WEFT_RELEASE_GENERIC(...) WEFT__TSA(release_generic_capability(__VA_ARGS__))
#define WEFT_TRY_ACQUIRE(...) WEFT__TSA(try_acquire_capability(__VA_ARGS__))
#define WEFT_TRY_ACQUIRE_SHARED(...) WEFT__TSA(try_acquire_shared_capability(__VA_ARGS__))
#define WEFT_REQUIRES(...) WEFT__TSA(requires_capability(__VA_ARGS__))
#define WEFT_REQUIRES_SHARED(...) WEFT__TSA(requires_shared_capability(__VA_ARGS__))
#define WEFT_EXCLUDES(...) WEFT__TSA(locks_excluded(__VA_ARGS__))
#define WEFT_ASSERT_CAPABILITY(x) WEFT__TSA(assert_capability(x))
#define WEFT_NO_THREAD_SAFETY_ANALYSIS WEFT__TSA(no_thread_safety_analysis)

/*
 * Returns a static, human-readable description of a weft error code
 * (a negative errno such as -EBUSY), for example "EBUSY: resource busy".
 * 0 gives "success". Unknown codes give "unknown error". Never NULL.
 */
WEFT_API const char *weft_strerror(int err);

/* The library's version, "MAJOR.MINOR.PATCH", as built. */
WEFT_API const char *weft_version(void);

/* Nanoseconds on CLOCK_MONOTONIC. */
WEFT_API uint64_t weft_now_ns(void);

/* Number of CPUs this process may run on (sched_getaffinity), at least 1. */
WEFT_API unsigned weft_cpu_count(void);

/* The kernel thread id of the calling thread (gettid), cached per thread. */
WEFT_API uint32_t weft_thread_id(void);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_BASE_H */
