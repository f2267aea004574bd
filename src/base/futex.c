/*
 * futex.c - the futex system call, deadlines and the fatal-error exit.
 *
 * Owns: weft__futex_wait/wake, weft__deadline_*, weft__fatal.
 * Promises: EINTR never escapes (a signal is a spurious wake-up, which every
 * caller tolerates by re-checking its condition); errors are -errno.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal/base.h"

int weft__deadline_init(weft__deadline_t *d, int64_t timeout_ns)
{
    if (timeout_ns == WEFT_FOREVER) {
        d->forever = 1;
        d->at.tv_sec = 0;
        d->at.tv_nsec = 0;
        return 0;
    }
    if (timeout_ns < 0)
        return -EINVAL;
    d->forever = 0;
    clock_gettime(CLOCK_MONOTONIC, &d->at);
    int64_t sec = timeout_ns / 1000000000;
    long nsec = (long)(timeout_ns % 1000000000);
    if (sec > (int64_t)(LONG_MAX / 2)) /* far future: clamp, avoid overflow */
        sec = LONG_MAX / 2;
    d->at.tv_sec += (time_t)sec;
    d->at.tv_nsec += nsec;
    if (d->at.tv_nsec >= 1000000000) {
        d->at.tv_sec++;
        d->at.tv_nsec -= 1000000000;
    }
    return 0;
}

int weft__deadline_passed(const weft__deadline_t *d)
{
    if (d->forever)
        return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec != d->at.tv_sec)
        return now.tv_sec > d->at.tv_sec;
    return now.tv_nsec >= d->at.tv_nsec;
}

int weft__futex_wait(uint32_t *addr, uint32_t val, const weft__deadline_t *d)
{
    const struct timespec *ts = NULL;
    if (d != NULL && !d->forever)
        ts = &d->at;
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so
     * repeated spurious wake-ups never stretch the total wait. */
    long r = syscall(SYS_futex, addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, val, ts, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    if (r == 0)
        return 0;
    switch (errno) {
    case EAGAIN:
        return -EAGAIN;
    case ETIMEDOUT:
        return -ETIMEDOUT;
    case EINTR:
        return 0;
    default:
        weft__fatal("futex wait on %p failed: errno %d", (void *)addr, errno);
    }
}

int weft__futex_wake(uint32_t *addr, int n)
{
    long r = syscall(SYS_futex, addr, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL, NULL, 0);
    if (r < 0)
        weft__fatal("futex wake on %p failed: errno %d", (void *)addr, errno);
    return (int)r;
}

void weft__fatal(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    /* write(2) directly: stdio may be locked by the thread that is stuck. */
    ssize_t w = write(STDERR_FILENO, "weft: ", 6);
    w = write(STDERR_FILENO, buf, (size_t)n);
    (void)w;
    abort();
}
