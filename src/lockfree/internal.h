/*
 * Internals of the lock-free layer shared with its tests.
 *
 * weft_stack_pop() is a loop over two steps; the tests drive the steps from
 * different threads to replay an ABA interleaving deterministically.
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

#endif /* WEFT_LOCKFREE_INTERNAL_H */
