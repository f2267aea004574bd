/*
 * stack.c - weft_stack_t: a Treiber stack made safe by hazard pointers.
 *
 * DESIGN
 *   _top == NULL      empty
 *   _top == n         n is the newest node; n->next ... the older ones
 *
 * Nodes are allocated by push and never pushed again: a popped node is
 * retired to the hazard pointer domain and freed only when no popper
 * protects it. A popper protects the top (hazard slot 0), reads its `next`
 * and swings the top with one CAS. While it holds the hazard the node cannot
 * be freed, so no new node can appear at its address: if the CAS finds the
 * same pointer on top, it is the same node, never popped in between, and
 * the `next` read from it is still its successor. This is why the ABA
 * problem cannot occur and why no tag or double-width CAS is needed; the
 * same hazard keeps the read of `next` from touching freed memory.
 *
 * Push is the classic CAS loop and needs no hazard: it never dereferences
 * a shared node. `next` and `item` are written before the node is
 * published and never change, so plain fields suffice.
 */
#include <stdlib.h>

#include "internal/base.h"
#include "lockfree/internal.h"
#include "weft/lockfree.h"

struct weft__snode {
    weft_hp_node_t hp;        /* first member: hazard pointer header */
    struct weft__snode *next; /* immutable once published */
    void *item;               /* immutable once published */
};

static void weft__snode_free(weft_hp_node_t *n)
{
    free(n); /* hp is the first member: n is the node's address */
}

int weft_stack_init(weft_stack_t *s)
{
    if (s == NULL)
        return -EINVAL;
    s->_top = NULL;
    return 0;
}

void weft_stack_destroy(weft_stack_t *s)
{
    if (s == NULL)
        return;
    /* Acquire: pairs with the release CAS in weft_stack_push(); the
     * caller guarantees no thread uses the stack any more. */
    struct weft__snode *n = __atomic_load_n(&s->_top, __ATOMIC_ACQUIRE);
    while (n != NULL) {
        struct weft__snode *next = n->next;
        free(n);
        n = next;
    }
    s->_top = NULL;
}

int weft_stack_push(weft_stack_t *s, void *item)
{
    if (s == NULL)
        return -EINVAL;
    struct weft__snode *n = malloc(sizeof *n);
    if (n == NULL)
        return -ENOMEM;
    weft_hp_node_init(&n->hp);
    n->item = item;
    n->next = __atomic_load_n(&s->_top, __ATOMIC_RELAXED);
    /* Release: publishes n->next, n->item and the header; pairs with the
     * acquire load in weft_hp_protect() (via weft__stack_pop_begin()). */
    while (!__atomic_compare_exchange_n(&s->_top, &n->next, n, true, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED))
        weft__cpu_relax();
    return 0;
}

int weft__stack_pop_begin(weft_stack_t *s, weft__stack_step_t *st)
{
    st->top = weft_hp_protect(0, (void *const *)&s->_top);
    if (st->top == NULL) {
        weft_hp_clear(0);
        /* A NULL from protect is an empty stack, or no slots (ENOMEM). */
        return __atomic_load_n(&s->_top, __ATOMIC_RELAXED) == NULL ? -EAGAIN : -ENOMEM;
    }
    (void)weft_hp_check(&st->top->hp);
    st->next = st->top->next;
    return 0;
}

int weft__stack_pop_commit(weft_stack_t *s, weft__stack_step_t *st, void **item)
{
    struct weft__snode *top = st->top;
    /* Seq_cst: the unlink must precede, in the single total order, the
     * hazard scan that weft_hp_retire() may run (store-buffering pair with
     * weft_hp_protect(); see hazard.c). Acquire on failure is not needed:
     * the caller starts over with a fresh protect. */
    if (!__atomic_compare_exchange_n(&s->_top, &top, st->next, false, __ATOMIC_SEQ_CST,
                                     __ATOMIC_RELAXED))
        return -EAGAIN;
    weft_hp_clear(0);
    /* The node is ours now: unlinked by our CAS, not yet retired. */
    *item = st->top->item;
    if (weft_hp_retire(&st->top->hp, weft__snode_free) != 0)
        weft__fatal("weft_stack_pop: cannot retire a node");
    return 0;
}

int weft_stack_pop(weft_stack_t *s, void **item)
{
    if (s == NULL || item == NULL)
        return -EINVAL;
    weft__stack_step_t st;
    for (;;) {
        int r = weft__stack_pop_begin(s, &st);
        if (r != 0)
            return r;
        if (weft__stack_pop_commit(s, &st, item) == 0)
            return 0;
        weft__cpu_relax();
    }
}
