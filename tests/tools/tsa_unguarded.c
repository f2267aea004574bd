/* tsa_unguarded.c - must be rejected: a WEFT_GUARDED_BY global written
 * without its lock. */
#include "weft.h"

static weft_mutex_t lock = WEFT_MUTEX_INIT("tsa");
static long counter WEFT_GUARDED_BY(lock);

void tsa_unguarded(void);
void tsa_unguarded(void)
{
    counter++;
}
