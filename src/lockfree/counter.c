/*
 * counter.c - atomic counters and a compare-and-swap loop that counts its
 * retries, so that contention can be measured rather than guessed.
 *
 * Owns: weft_counter_*, weft_cas_update(), weft_cas_stats_read().
 * Promises: every update is sequentially consistent; statistics are
 * relaxed counters (exact once the threads that update them are joined).
 */
#include "internal/base.h"
#include "weft/lockfree.h"

static inline void weft__counter_valid(const void *c, const char *fn)
{
    if (weft__unlikely(c == NULL))
        weft__fatal("%s: NULL counter", fn);
}

int64_t weft_counter_add(weft_counter_t *c, int64_t delta)
{
    weft__counter_valid(c, __func__);
    return __atomic_add_fetch(&c->_value, delta, __ATOMIC_SEQ_CST);
}

int64_t weft_counter_load(const weft_counter_t *c)
{
    weft__counter_valid(c, __func__);
    return __atomic_load_n(&c->_value, __ATOMIC_SEQ_CST);
}

void weft_counter_store(weft_counter_t *c, int64_t value)
{
    weft__counter_valid(c, __func__);
    __atomic_store_n(&c->_value, value, __ATOMIC_SEQ_CST);
}

/* Relaxed: statistics order nothing; readers join the threads first. */
static inline void weft__cas_count(weft_cas_stats_t *stats, uint64_t retries)
{
    if (stats == NULL)
        return;
    __atomic_fetch_add(&stats->_successes, 1, __ATOMIC_RELAXED);
    if (retries != 0)
        __atomic_fetch_add(&stats->_retries, retries, __ATOMIC_RELAXED);
}

int64_t weft_counter_add_cas(weft_counter_t *c, int64_t delta, weft_cas_stats_t *stats)
{
    weft__counter_valid(c, __func__);
    uint64_t retries = 0;
    /* Relaxed: only a first guess; the CAS checks it. */
    int64_t old = __atomic_load_n(&c->_value, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(&c->_value, &old, old + delta, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_RELAXED))
        retries++;
    weft__cas_count(stats, retries);
    return old + delta;
}

int weft_cas_update(uint64_t *word, weft_cas_fn fn, void *arg, uint64_t *old_out,
                    weft_cas_stats_t *stats)
{
    if (word == NULL || fn == NULL)
        return -EINVAL;
    uint64_t retries = 0;
    /* Relaxed: only a first guess; the CAS checks it. */
    uint64_t old = __atomic_load_n(word, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(word, &old, fn(old, arg), false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_RELAXED))
        retries++;
    weft__cas_count(stats, retries);
    if (old_out != NULL)
        *old_out = old;
    return 0;
}

void weft_cas_stats_read(weft_cas_stats_t *stats, uint64_t *successes, uint64_t *retries,
                         bool reset)
{
    if (stats == NULL)
        return;
    /* Relaxed: see weft__cas_count(). */
    uint64_t s = reset ? __atomic_exchange_n(&stats->_successes, 0, __ATOMIC_RELAXED)
                       : __atomic_load_n(&stats->_successes, __ATOMIC_RELAXED);
    uint64_t r = reset ? __atomic_exchange_n(&stats->_retries, 0, __ATOMIC_RELAXED)
                       : __atomic_load_n(&stats->_retries, __ATOMIC_RELAXED);
    if (successes != NULL)
        *successes = s;
    if (retries != NULL)
        *retries = r;
}
