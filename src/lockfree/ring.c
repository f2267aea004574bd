/*
 * ring.c - weft_ring_t: bounded single-producer single-consumer ring.
 *
 * DESIGN
 * Two free-running counters: _head (next slot to fill, written by the
 * producer only) and _tail (next slot to drain, written by the consumer
 * only). The ring holds _head - _tail items, 0 .. capacity, so every slot
 * is usable. Each side keeps a private copy of the other's counter and
 * reloads it only when the copy says full (or empty): in steady streaming
 * the producer's and the consumer's cache lines are touched once per lap
 * of the other side, not once per item.
 *
 *   producer: write slot[h]; store _head = h + 1 (release)
 *   consumer: load _head (acquire); read slot[t]; store _tail = t + 1 (release)
 *   producer: load _tail (acquire) before reusing slot[t]
 *
 * No compare-and-swap, no fence beyond these release/acquire pairs (plain
 * moves on x86-64). Nothing ever waits; the caller decides how to wait.
 */
#include <stdlib.h>

#include "internal/base.h"
#include "weft/lockfree.h"

int weft_ring_init(weft_ring_t *r, size_t capacity)
{
    if (r == NULL || capacity == 0 || capacity > ((size_t)1 << (sizeof(size_t) * 8 - 2)))
        return -EINVAL;
    size_t cap = 1;
    while (cap < capacity)
        cap <<= 1;
    void **slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return -ENOMEM;
    r->_slots = slots;
    r->_mask = cap - 1;
    r->_head = 0;
    r->_tail_seen = 0;
    r->_tail = 0;
    r->_head_seen = 0;
    return 0;
}

void weft_ring_destroy(weft_ring_t *r)
{
    if (r == NULL || r->_slots == NULL)
        return;
    free(r->_slots);
    r->_slots = NULL;
}

/* Producer: free slots, reloading the consumer's counter only when the
 * cached one says fewer than `want` are free. */
static inline size_t weft__ring_room(weft_ring_t *r, size_t h, size_t want)
{
    size_t cap = r->_mask + 1;
    size_t room = cap - (h - r->_tail_seen);
    if (room >= want)
        return room;
    /* Acquire: pairs with the release store of _tail in the pop functions:
     * the consumer's reads of the slots it freed are done. */
    r->_tail_seen = __atomic_load_n(&r->_tail, __ATOMIC_ACQUIRE);
    return cap - (h - r->_tail_seen);
}

/* Consumer: items ready, reloading the producer's counter only when the
 * cached one says fewer than `want`. */
static inline size_t weft__ring_ready(weft_ring_t *r, size_t t, size_t want)
{
    size_t ready = r->_head_seen - t;
    if (ready >= want)
        return ready;
    /* Acquire: pairs with the release store of _head in the push
     * functions, so the slots below it are written. */
    r->_head_seen = __atomic_load_n(&r->_head, __ATOMIC_ACQUIRE);
    return r->_head_seen - t;
}

int weft_ring_push_spsc(weft_ring_t *r, void *item)
{
    if (r == NULL)
        return -EINVAL;
    /* Relaxed: _head is written by this thread only. */
    size_t h = __atomic_load_n(&r->_head, __ATOMIC_RELAXED);
    if (weft__ring_room(r, h, 1) == 0)
        return -EAGAIN;
    r->_slots[h & r->_mask] = item;
    /* Release: publishes the slot; pairs with the acquire in
     * weft__ring_ready(). */
    __atomic_store_n(&r->_head, h + 1, __ATOMIC_RELEASE);
    return 0;
}

int weft_ring_pop_spsc(weft_ring_t *r, void **item)
{
    if (r == NULL || item == NULL)
        return -EINVAL;
    /* Relaxed: _tail is written by this thread only. */
    size_t t = __atomic_load_n(&r->_tail, __ATOMIC_RELAXED);
    if (weft__ring_ready(r, t, 1) == 0)
        return -EAGAIN;
    *item = r->_slots[t & r->_mask];
    /* Release: our read of the slot happens-before the producer reuses it;
     * pairs with the acquire in weft__ring_room(). */
    __atomic_store_n(&r->_tail, t + 1, __ATOMIC_RELEASE);
    return 0;
}

size_t weft_ring_push_many_spsc(weft_ring_t *r, void *const *items, size_t n)
{
    if (r == NULL || items == NULL || n == 0)
        return 0;
    size_t h = __atomic_load_n(&r->_head, __ATOMIC_RELAXED); /* own counter */
    size_t room = weft__ring_room(r, h, n);
    if (n > room)
        n = room;
    for (size_t i = 0; i < n; i++)
        r->_slots[(h + i) & r->_mask] = items[i];
    if (n > 0)
        /* Release: as in weft_ring_push_spsc(), for all n slots at once. */
        __atomic_store_n(&r->_head, h + n, __ATOMIC_RELEASE);
    return n;
}

size_t weft_ring_pop_many_spsc(weft_ring_t *r, void **items, size_t n)
{
    if (r == NULL || items == NULL || n == 0)
        return 0;
    size_t t = __atomic_load_n(&r->_tail, __ATOMIC_RELAXED); /* own counter */
    size_t ready = weft__ring_ready(r, t, n);
    if (n > ready)
        n = ready;
    for (size_t i = 0; i < n; i++)
        items[i] = r->_slots[(t + i) & r->_mask];
    if (n > 0)
        /* Release: as in weft_ring_pop_spsc(), for all n slots at once. */
        __atomic_store_n(&r->_tail, t + n, __ATOMIC_RELEASE);
    return n;
}

size_t weft_ring_capacity(const weft_ring_t *r)
{
    return r != NULL ? r->_mask + 1 : 0;
}

size_t weft_ring_size(const weft_ring_t *r)
{
    if (r == NULL)
        return 0;
    /* Acquire on both: a snapshot; _tail first so the difference is never
     * negative (_head only grows, and _tail never passes it). */
    size_t t = __atomic_load_n(&r->_tail, __ATOMIC_ACQUIRE);
    size_t h = __atomic_load_n(&r->_head, __ATOMIC_ACQUIRE);
    return h - t;
}
