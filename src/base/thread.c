/*
 * thread.c - thread ids, CPU count and the monotonic clock.
 *
 * Owns: the per-thread cached kernel tid (weft__tls_tid), reset in the child
 * after fork() so ownership checks keep working there.
 */
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal/base.h"

__thread uint32_t weft__tls_tid __attribute__((tls_model("initial-exec")));

uint32_t weft__tid_slow(void)
{
    uint32_t t = (uint32_t)syscall(SYS_gettid);
    weft__tls_tid = t;
    return t;
}

/* The forking thread's cached tid is its parent's: forget it in the child. */
static void weft__atfork_child(void)
{
    weft__tls_tid = 0;
}

__attribute__((constructor)) static void weft__thread_setup(void)
{
    pthread_atfork(NULL, NULL, weft__atfork_child);
}

uint32_t weft_thread_id(void)
{
    return weft__tid();
}

uint64_t weft_now_ns(void)
{
    return weft__now_ns();
}

unsigned weft_cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return (unsigned)n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1u;
}

const char *weft_version(void)
{
    return WEFT_VERSION_STRING;
}
