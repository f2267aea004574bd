/*
 * A minimal futex lock for weft's own bookkeeping (the check layer, tables).
 * It is never instrumented and never reported on, so the check layer can
 * use it while watching every other lock.
 *
 *   0  free
 *   1  held, nobody asleep
 *   2  held, threads may be asleep on the word
 */
#ifndef WEFT_INTERNAL_RAWLOCK_H
#define WEFT_INTERNAL_RAWLOCK_H

#include "internal/base.h"

typedef struct weft__rawlock {
    uint32_t word;
} weft__rawlock_t;

#define WEFT__RAWLOCK_INIT { 0 }

static inline void weft__rawlock_lock(weft__rawlock_t *l)
{
    uint32_t c = 0;
    /* Acquire: pairs with the release exchange in weft__rawlock_unlock(). */
    if (weft__likely(__atomic_compare_exchange_n(&l->word, &c, 1, false, __ATOMIC_ACQUIRE,
                                                 __ATOMIC_RELAXED)))
        return;
    for (int i = 0; i < 100; i++) {
        weft__cpu_relax();
        c = 0;
        if (__atomic_load_n(&l->word, __ATOMIC_RELAXED) == 0 &&
            __atomic_compare_exchange_n(&l->word, &c, 1, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return;
    }
    /* Drepper's "futexes are tricky" mutex 2: sleep with the word at 2;
     * the unlocker sees 2 and wakes. Acquire: as above. */
    while (__atomic_exchange_n(&l->word, 2, __ATOMIC_ACQUIRE) != 0)
        weft__futex_wait(&l->word, 2, NULL);
}

static inline void weft__rawlock_unlock(weft__rawlock_t *l)
{
    /* Release: pairs with the acquire operations in weft__rawlock_lock(). */
    if (__atomic_exchange_n(&l->word, 0, __ATOMIC_RELEASE) == 2)
        weft__futex_wake(&l->word, 1);
}

#endif
