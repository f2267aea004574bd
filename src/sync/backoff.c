/*
 * backoff.c - weft_backoff_t: exponential back-off with full jitter.
 *
 * DESIGN
 * A retry loop that failed waits a random number of pause units drawn
 * uniformly from [0, bound], then doubles the bound, up to a cap ("full
 * jitter": contending threads spread out instead of retrying in lock-step).
 * weft_backoff_reset() returns the bound to its minimum after progress.
 *
 * A pause unit is one weft__cpu_relax(). Pauses up to WEFT__SPIN_UNITS are
 * spun; longer ones call sched_yield() once per WEFT__SPIN_UNITS, so that on
 * an oversubscribed machine the thread we are waiting for gets the CPU
 * instead of watching us spin.
 *
 * The random numbers come from a per-object xorshift64* generator: no
 * shared state, no locking. A weft_backoff_t belongs to one thread.
 */
#include <sched.h>
#include <stdint.h>

#include "internal/base.h"
#include "internal/check.h"
#include "internal/instrument.h"

/* Consecutive failed pauses (no weft_backoff_reset) that the check layer
 * reports as a possible livelock. */
#define WEFT__BACKOFF_LIVELOCK 10000u
#include "weft/sync.h"

#define WEFT__BACKOFF_MIN 4u
#define WEFT__BACKOFF_MAX 65536u
#define WEFT__SPIN_UNITS 1024u

/* splitmix64: spreads a seed over all 64 bits, never leaving them all zero
 * for the small seeds people pick. */
static uint64_t weft__mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

/* xorshift64*: the state is never 0, so the sequence never sticks. */
static uint64_t weft__backoff_next(weft_backoff_t *b)
{
    uint64_t x = b->_rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    b->_rng = x;
    return x * 0x2545f4914f6cdd1du;
}

/* A uniform draw from [0, bound], by multiply-shift on the high 32 bits. */
static uint32_t weft__backoff_draw(weft_backoff_t *b, uint32_t bound)
{
    uint64_t r = weft__backoff_next(b) >> 32;
    return (uint32_t)((r * ((uint64_t)bound + 1)) >> 32);
}

void weft_backoff_init(weft_backoff_t *b, uint64_t seed)
{
    if (b == NULL)
        return;
    if (seed == 0)
        seed = weft__now_ns() ^ ((uint64_t)weft__tid() << 32) ^ (uint64_t)(uintptr_t)b;
    b->_rng = weft__mix64(seed);
    if (b->_rng == 0)
        b->_rng = 0x9e3779b97f4a7c15u;
    b->_min = WEFT__BACKOFF_MIN;
    b->_max = WEFT__BACKOFF_MAX;
    b->_total = 0;
    weft_backoff_reset(b);
}

int weft_backoff_set_limits(weft_backoff_t *b, uint32_t min, uint32_t max)
{
    if (b == NULL || min < 1 || max < min)
        return -EINVAL;
    b->_min = min;
    b->_max = max;
    weft_backoff_reset(b);
    return 0;
}

/* Wait `units` pause units: spin if short, yield the CPU if long. */
static void weft__backoff_wait(uint32_t units)
{
    if (units <= WEFT__SPIN_UNITS) {
        for (uint32_t i = 0; i < units; i++)
            weft__cpu_relax();
        return;
    }
    for (uint32_t left = units; left >= WEFT__SPIN_UNITS; left -= WEFT__SPIN_UNITS)
        sched_yield();
}

void weft_backoff_pause(weft_backoff_t *b)
{
    if (b == NULL)
        return;
    uint32_t units = weft__backoff_draw(b, b->_bound);
    b->_last = units;
    weft__backoff_wait(units);
    if (b->_failures < UINT32_MAX)
        b->_failures++;
    b->_total++;
    /* Livelock watch: a retry loop that keeps failing is reported once. */
    if (weft__unlikely(b->_failures >= WEFT__BACKOFF_LIVELOCK) && WEFT__INSTRUMENTED() &&
        (__atomic_load_n(&weft__instr, __ATOMIC_RELAXED) & WEFT__INSTR_CHECK))
        weft__check_retry_failed(b, "weft_backoff retry loop", b->_failures,
                                 __builtin_return_address(0));
    b->_bound = b->_bound > b->_max / 2 ? b->_max : b->_bound * 2;
}

void weft_backoff_reset(weft_backoff_t *b)
{
    if (b == NULL)
        return;
    b->_bound = b->_min;
    b->_failures = 0;
    b->_last = 0;
}

uint32_t weft_backoff_failures(const weft_backoff_t *b)
{
    return b != NULL ? b->_failures : 0;
}
