/* A weft mutex's second life at the same address, in a context this thread
 * has taken many times before (A, then the first life of `slot`). The
 * second life is taken in the opposite order with A and then in the old
 * order again; the old-order acquisition must be seen as new, closing
 * A --> slot --> A in the second life. Must report. */
// expect: lock-order-inversion
#include "weft.h"
static weft_mutex_t A = WEFT_MUTEX_INIT("A");
static weft_mutex_t slot;
static void a_then_slot(void)
{
    weft_mutex_lock(&A);
    weft_mutex_lock(&slot);
    weft_mutex_unlock(&slot);
    weft_mutex_unlock(&A);
}
int main(void)
{
    weft_mutex_init(&slot, "first life");
    for (int i = 0; i < 1000; i++)
        a_then_slot();
    weft_mutex_destroy(&slot);
    weft_mutex_init(&slot, "second life");
    weft_mutex_lock(&slot);
    weft_mutex_lock(&A);
    weft_mutex_unlock(&A);
    weft_mutex_unlock(&slot);
    a_then_slot();
    return weft_mutex_destroy(&slot);
}
