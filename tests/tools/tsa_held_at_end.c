/* tsa_held_at_end.c - must be rejected: a lock still held when the
 * function returns (a forgotten unlock). */
#include "weft.h"

static weft_mutex_t lock = WEFT_MUTEX_INIT("tsa");
static long counter WEFT_GUARDED_BY(lock);

void tsa_forgot_unlock(void);
void tsa_forgot_unlock(void)
{
    weft_mutex_lock(&lock);
    counter++;
}
