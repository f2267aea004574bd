/*
 * async.c - weft_async_t: cross-thread wake-ups through the loop's eventfd.
 *
 * DESIGN
 *   _pending  0: nothing sent since the loop last looked; 1: a send waits
 *
 * weft_async_send sets _pending and wakes the loop (weft__loop_wake, which
 * writes the eventfd only when no wake-up is already unconsumed). The loop,
 * woken, clears wake_pending and then exchanges every started handle's
 * _pending for 0, calling the callback of each that was 1. Repeated sends
 * before that coalesce into one call.
 *
 * No send is lost: a send's store to _pending comes before its exchange on
 * wake_pending (both seq_cst). If that exchange saw 1, the loop had not yet
 * cleared wake_pending, so it clears it afterwards and its later scan sees
 * _pending == 1. If it saw 0, the send writes the eventfd and the loop is
 * woken (again) and scans again.
 */
#include "internal/loop.h"

int weft_async_init(weft_loop_t *loop, weft_async_t *a)
{
    if (loop == NULL || a == NULL)
        return -EINVAL;
    a->loop = loop;
    a->_cb = NULL;
    a->_pending = 0;
    a->_active = false;
    a->_prev = a->_next = NULL;
    return 0;
}

int weft_async_start(weft_async_t *a, weft_async_cb cb)
{
    if (a == NULL || a->loop == NULL || cb == NULL)
        return -EINVAL;
    a->_cb = cb;
    if (a->_active)
        return 0;
    weft_loop_t *l = a->loop;
    a->_active = true;
    a->_prev = NULL;
    a->_next = l->asyncs;
    if (l->asyncs != NULL)
        l->asyncs->_prev = a;
    l->asyncs = a;
    weft__loop_active(l, +1);
    /* A send made before the start is delivered: look at _pending soon. */
    /* Relaxed: a hint only; a send that races here wakes the loop itself. */
    if (__atomic_load_n(&a->_pending, __ATOMIC_RELAXED) != 0)
        weft__loop_wake(l);
    return 0;
}

static void weft__async_unlink(weft_loop_t *l, weft_async_t *a)
{
    if (a->_prev != NULL)
        a->_prev->_next = a->_next;
    else
        l->asyncs = a->_next;
    if (a->_next != NULL)
        a->_next->_prev = a->_prev;
    a->_prev = a->_next = NULL;
    a->_active = false;
    l->async_gen++;
}

int weft_async_stop(weft_async_t *a)
{
    if (a == NULL || a->loop == NULL)
        return -EINVAL;
    if (!a->_active)
        return 0;
    weft__async_unlink(a->loop, a);
    weft__loop_active(a->loop, -1);
    return 0;
}

int weft_async_send(weft_async_t *a)
{
    if (a == NULL || a->loop == NULL)
        return -EINVAL;
    /* Seq_cst: ordered before the exchange in weft__loop_wake(); see the
     * argument at the top of the file. When _pending was 1 already, the
     * loop has not yet taken it (its exchange would have made it 0), so the
     * callback it owes runs after this send; the earlier sender wakes it. */
    if (__atomic_exchange_n(&a->_pending, 1, __ATOMIC_SEQ_CST) != 0)
        return 0;
    weft__loop_wake(a->loop);
    return 0;
}

void weft__asyncs_run(weft_loop_t *l)
{
    weft_async_t *a = l->asyncs;
    while (a != NULL) {
        /* Seq_cst: pairs with the exchange in weft_async_send(), made after
         * the loop cleared wake_pending in weft__loop_on_wake(). */
        if (__atomic_exchange_n(&a->_pending, 0, __ATOMIC_SEQ_CST) == 0) {
            a = a->_next;
            continue;
        }
        /* The callback may stop (and free) any handle: when the list
         * changed, start again from the head; handles already served have
         * _pending == 0 and are skipped. */
        uint64_t gen = l->async_gen;
        WEFT__LOOP_CALL(l, a->_cb, a);
        a = gen == l->async_gen ? a->_next : l->asyncs;
    }
}

void weft__asyncs_detach(weft_loop_t *l)
{
    while (l->asyncs != NULL)
        weft__async_unlink(l, l->asyncs);
}
