/* A weft mutex destroyed and re-initialised at the same address is a new
 * lock: the opposite order with A afterwards must stay silent. */
// expect: silent
#include "weft.h"
static weft_mutex_t A = WEFT_MUTEX_INIT("A");
static weft_mutex_t slot;
int main(void)
{
    weft_mutex_init(&slot, "first life");
    weft_mutex_lock(&A); weft_mutex_lock(&slot);
    weft_mutex_unlock(&slot); weft_mutex_unlock(&A);
    weft_mutex_destroy(&slot);
    weft_mutex_init(&slot, "second life");
    weft_mutex_lock(&slot); weft_mutex_lock(&A);
    weft_mutex_unlock(&A); weft_mutex_unlock(&slot);
    return weft_mutex_destroy(&slot);
}
