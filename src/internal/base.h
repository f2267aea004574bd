/*
 * Internal helpers of the base layer, shared by every other layer:
 * futex wrappers, deadlines, the cached thread id, CPU pause, branch hints.
 * Nothing here takes a lock.
 */
#ifndef WEFT_INTERNAL_BASE_H
#define WEFT_INTERNAL_BASE_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "weft/base.h"

#define weft__likely(x) __builtin_expect(!!(x), 1)
#define weft__unlikely(x) __builtin_expect(!!(x), 0)

/*
 * gcc's ipa-reference pass can keep a caller's static variable in a register
 * across calls to a lock function it can see (same translation unit or LTO),
 * losing updates. Public lock entry points carry this attribute so that no
 * inter-procedural analysis looks through them, however weft is built.
 */
#if defined(__GNUC__) && !defined(__clang__)
#define WEFT__NOIPA __attribute__((noipa))
#else
#define WEFT__NOIPA __attribute__((noinline))
#endif

#define WEFT__COLD __attribute__((cold, noinline))

/* One iteration of a spin-wait loop. */
static inline void weft__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

/* ---- thread id ---------------------------------------------------------- */

/* Cached gettid(); 0 until first use; reset in the child after fork(). */
extern __thread uint32_t weft__tls_tid __attribute__((tls_model("initial-exec")));
uint32_t weft__tid_slow(void);

static inline uint32_t weft__tid(void)
{
    uint32_t t = weft__tls_tid;
    if (weft__unlikely(t == 0))
        t = weft__tid_slow();
    return t;
}

/* ---- deadlines ------------------------------------------------------------ */

/*
 * A deadline on CLOCK_MONOTONIC. `forever` is set for WEFT_FOREVER.
 * weft__deadline_init returns -EINVAL for negative timeouts other than
 * WEFT_FOREVER.
 */
typedef struct weft__deadline {
    struct timespec at;
    int forever;
} weft__deadline_t;

int weft__deadline_init(weft__deadline_t *d, int64_t timeout_ns);
/* True once the deadline has passed (never for a forever deadline). */
int weft__deadline_passed(const weft__deadline_t *d);

/* ---- spinning before a park ------------------------------------------------ */

/* The spin policy of the mutex and the semaphore (the numbers behind it:
 * src/sync/mutex.c, "Spin policy"): WEFT__SPIN_ROUNDS probes before
 * parking; round r < WEFT__SPIN_SHIFT_MAX pauses 2^r times before its
 * probe, the later rounds yield the CPU instead. */
#define WEFT__SPIN_ROUNDS 16u
#define WEFT__SPIN_SHIFT_MAX 6u

/* The wait before probe number `round`. False when the caller should stop
 * spinning and park: a timed caller whose deadline has passed does not
 * yield (a yield can give the CPU away for a whole time slice). */
static inline bool weft__spin_pause(uint32_t round, const weft__deadline_t *d)
{
    if (round < WEFT__SPIN_SHIFT_MAX) {
        for (uint32_t i = 0; i < (1u << round); i++)
            weft__cpu_relax();
        return true;
    }
    if (d != NULL && weft__deadline_passed(d))
        return false;
    (void)sched_yield();
    return true;
}

static inline int weft__timeout_valid(int64_t timeout_ns)
{
    return timeout_ns >= 0 || timeout_ns == WEFT_FOREVER;
}

/* ---- futex ---------------------------------------------------------------- */

/*
 * Sleep while *addr == val, until woken or the deadline (NULL: none).
 * Returns 0 when woken (or spuriously, or by a signal: callers re-check
 * their condition in a loop), -EAGAIN when *addr != val on entry,
 * -ETIMEDOUT when the deadline passed. Process-private futexes.
 */
int weft__futex_wait(uint32_t *addr, uint32_t val, const weft__deadline_t *d);
/* Wake up to n sleepers on addr; returns how many were woken (>= 0). */
int weft__futex_wake(uint32_t *addr, int n);

/* ---- monotonic clock ------------------------------------------------------ */

static inline uint64_t weft__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Print "weft: <message>" to stderr and abort(): for certain deadlocks
 * and corrupted state, where returning would hang or lie. */
__attribute__((noreturn, format(printf, 1, 2))) void weft__fatal(const char *fmt, ...);

#endif /* WEFT_INTERNAL_BASE_H */
