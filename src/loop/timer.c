/*
 * timer.c - weft_timer_t on a binary min-heap.
 *
 * DESIGN
 *   The heap holds active timers ordered by (_due, _seq): _seq is taken
 *   from a per-loop counter at every start, so timers due at the same
 *   nanosecond fire in the order they were started. Each timer knows its
 *   slot, so stop and restart are O(log n). A timer's due time is computed
 *   from a fresh clock reading at start, and it fires only once the clock
 *   has reached it: never early. A repeating timer is re-armed from its
 *   due time (not from when it ran), so it keeps its rhythm; if the loop
 *   fell behind by more than one period, it is re-armed from now instead
 *   of firing in a burst.
 *
 *   Loop thread only, like every handle.
 */
#include <stdlib.h>

#include "internal/loop.h"

#define WEFT__NO_SLOT SIZE_MAX

static bool weft__timer_before(const weft_timer_t *a, const weft_timer_t *b)
{
    return a->_due < b->_due || (a->_due == b->_due && a->_seq < b->_seq);
}

static void weft__heap_set(weft_loop_t *l, size_t i, weft_timer_t *t)
{
    l->heap[i] = t;
    t->_slot = i;
}

static void weft__heap_up(weft_loop_t *l, size_t i)
{
    weft_timer_t *t = l->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!weft__timer_before(t, l->heap[parent]))
            break;
        weft__heap_set(l, i, l->heap[parent]);
        i = parent;
    }
    weft__heap_set(l, i, t);
}

static void weft__heap_down(weft_loop_t *l, size_t i)
{
    weft_timer_t *t = l->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= l->nheap)
            break;
        if (c + 1 < l->nheap && weft__timer_before(l->heap[c + 1], l->heap[c]))
            c++;
        if (!weft__timer_before(l->heap[c], t))
            break;
        weft__heap_set(l, i, l->heap[c]);
        i = c;
    }
    weft__heap_set(l, i, t);
}

static int weft__heap_push(weft_loop_t *l, weft_timer_t *t)
{
    if (l->nheap == l->capheap) {
        size_t cap = l->capheap != 0 ? 2 * l->capheap : 64;
        weft_timer_t **h = realloc(l->heap, cap * sizeof *h);
        if (h == NULL)
            return -ENOMEM;
        l->heap = h;
        l->capheap = cap;
    }
    weft__heap_set(l, l->nheap++, t);
    weft__heap_up(l, t->_slot);
    return 0;
}

static void weft__heap_remove(weft_loop_t *l, weft_timer_t *t)
{
    size_t i = t->_slot;
    weft_timer_t *last = l->heap[--l->nheap];
    t->_slot = WEFT__NO_SLOT;
    if (last == t)
        return;
    weft__heap_set(l, i, last);
    weft__heap_up(l, i);
    weft__heap_down(l, last->_slot);
}

int weft_timer_init(weft_loop_t *loop, weft_timer_t *t)
{
    if (loop == NULL || t == NULL)
        return -EINVAL;
    t->loop = loop;
    t->_cb = NULL;
    t->_due = t->_repeat = t->_seq = 0;
    t->_slot = WEFT__NO_SLOT;
    return 0;
}

bool weft_timer_active(const weft_timer_t *t)
{
    return t != NULL && t->_slot != WEFT__NO_SLOT;
}

int weft_timer_stop(weft_timer_t *t)
{
    if (t == NULL || t->loop == NULL)
        return -EINVAL;
    if (t->_slot == WEFT__NO_SLOT)
        return 0;
    weft__heap_remove(t->loop, t);
    weft__loop_active(t->loop, -1);
    return 0;
}

static int weft__timer_arm(weft_timer_t *t, uint64_t due)
{
    weft_loop_t *l = t->loop;
    t->_due = due;
    t->_seq = l->timer_seq++;
    return weft__heap_push(l, t);
}

int weft_timer_start(weft_timer_t *t, weft_timer_cb cb, uint64_t timeout_ns, uint64_t repeat_ns)
{
    if (t == NULL || t->loop == NULL || cb == NULL)
        return -EINVAL;
    uint64_t now = weft__now_ns();
    if (timeout_ns > UINT64_MAX - now)
        return -EINVAL;
    weft_timer_stop(t);
    t->_cb = cb;
    t->_repeat = repeat_ns;
    int err = weft__timer_arm(t, now + timeout_ns);
    if (err == 0)
        weft__loop_active(t->loop, +1);
    return err;
}

/* Record how late t fired, then re-arm it (repeating) or retire it. */
static void weft__timer_fire(weft_loop_t *l, weft_timer_t *t, uint64_t now)
{
    uint64_t lag = now - t->_due;
    weft__loop_hist_add(l->st.lag_hist, lag);
    /* Relaxed: statistics, as in weft__loop_stat_add(). */
    __atomic_store_n(&l->st.lag_last_ns, lag, __ATOMIC_RELAXED);
    if (lag > l->st.lag_max_ns)
        __atomic_store_n(&l->st.lag_max_ns, lag, __ATOMIC_RELAXED);
    weft__heap_remove(l, t);
    if (t->_repeat == 0) {
        weft__loop_active(l, -1);
    } else {
        uint64_t next = t->_due + t->_repeat;
        if (weft__timer_arm(t, next > now ? next : now + t->_repeat) != 0)
            weft__loop_active(l, -1); /* Cannot fail: the slot just freed is reused. */
    }
    WEFT__LOOP_CALL(l, t->_cb, t);
}

void weft__timers_run(weft_loop_t *l)
{
    if (l->nheap == 0)
        return;
    uint64_t now = weft__now_ns();
    /* Timers started by a callback during this pass are due no earlier than
     * now + 0 with a later seq; the limit keeps a zero-period repeat from
     * spinning here forever. */
    uint64_t limit = l->timer_seq;
    while (l->nheap > 0) {
        weft_timer_t *t = l->heap[0];
        if (t->_due > now || t->_seq >= limit)
            break;
        weft__timer_fire(l, t, now);
    }
}

int64_t weft__timers_next(weft_loop_t *l)
{
    if (l->nheap == 0)
        return -1;
    uint64_t now = weft__now_ns();
    uint64_t due = l->heap[0]->_due;
    return due <= now ? 0 : (int64_t)(due - now);
}

void weft__timers_detach(weft_loop_t *l)
{
    for (size_t i = 0; i < l->nheap; i++)
        l->heap[i]->_slot = WEFT__NO_SLOT;
    l->nheap = 0;
}
