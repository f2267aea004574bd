/* tsa_double_lock.c - must be rejected: a lock taken twice (weft's mutex is
 * not recursive; at run time this aborts). */
#include "weft.h"

static weft_mutex_t lock = WEFT_MUTEX_INIT("tsa");

void tsa_double_lock(void);
void tsa_double_lock(void)
{
    weft_mutex_lock(&lock);
    weft_mutex_lock(&lock);
    weft_mutex_unlock(&lock);
}
