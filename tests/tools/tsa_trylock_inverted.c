/* tsa_trylock_inverted.c - must be rejected: trylock's result read the
 * wrong way round. It returns 0 on success (WEFT_TRY_ACQUIRE(0, m)), so the
 * branch below runs exactly when the lock was NOT taken. */
#include "weft.h"

static weft_mutex_t lock = WEFT_MUTEX_INIT("tsa");
static long counter WEFT_GUARDED_BY(lock);

void tsa_trylock_inverted(void);
void tsa_trylock_inverted(void)
{
    if (weft_mutex_trylock(&lock) != 0)
        counter++;
}
