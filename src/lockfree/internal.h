/*
 * Internals of the lock-free layer shared with its tests.
 *
 * weft_stack_pop() is a loop over two steps; the tests drive the steps from
 * different threads to replay an ABA interleaving deterministically.
 * weft__queue_init_at() starts a queue's positions anywhere, so that the
 * tests can cross the point where they wrap around.
 */
#ifndef WEFT_LOCKFREE_INTERNAL_H
#define WEFT_LOCKFREE_INTERNAL_H

#include "weft/lockfree.h"

/* What a popper saw between its two steps. */
typedef struct weft__stack_step {
    struct weft__snode *top;  /* protected by the caller's hazard slot 0 */
    struct weft__snode *next; /* top->next as read */
} weft__stack_step_t;

/* Protects the top node and reads its successor. 0, or -EAGAIN when the
 * stack is empty, -ENOMEM when no hazard slots could be allocated. */
int weft__stack_pop_begin(weft_stack_t *s, weft__stack_step_t *st);
/* Swings the top from st->top to st->next. 0 and *item set (the node is
 * retired), or -EAGAIN when the top changed (call begin again). */
int weft__stack_pop_commit(weft_stack_t *s, weft__stack_step_t *st, void **item);

/* weft_queue_init(), with the first position `first` (counted in items)
 * instead of 0. Same results as weft_queue_init(). */
int weft__queue_init_at(weft_queue_t *q, size_t capacity, size_t first);

#endif /* WEFT_LOCKFREE_INTERNAL_H */
